/** The `tsvm` command. */
import { CharSpecError } from '../host/node/chardev.js';
import { UsageError } from './options.js';
import { runCommand } from './run.js';

const HELP = `Usage: tsvm <command> [options]

Commands:
  run        run a virtual PC (see 'tsvm run --help')
  help       show this help

tsvm is an x86 PC virtual machine written in TypeScript.
`;

export function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return cmd === undefined ? 1 : 0;
      case 'run':
        return runCommand(rest);
      default:
        throw new UsageError(`unknown command '${cmd}' (see 'tsvm --help')`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof CharSpecError) {
      process.stderr.write(`tsvm: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));

/** The `tsvm` command. */
import { VmConfigError } from '../vmm/spec.js';
import { UsageError } from './options.js';
import { runCommand } from './run.js';
import { imageCommand } from './image.js';
import { serveCommand, ServeUsageError } from '../server/serve.js';

const HELP = `Usage: tsvm <command> [options]

Commands:
  run        run a virtual PC (see 'tsvm run --help'); with no options, the default Linux guest
  image      build or show the default guest image (see 'tsvm image --help')
  serve      run the daemon: VMs as services, a REST/WebSocket API and a web console (see 'tsvm serve --help')
  help       show this help

tsvm is an x86 PC virtual machine written in TypeScript.
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      case undefined:
        process.stdout.write(HELP);
        return 1;
      case 'run':
        return await runCommand(rest);
      case 'image':
        return imageCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      default:
        throw new UsageError(`unknown command '${cmd}' (see 'tsvm --help')`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof VmConfigError || e instanceof ServeUsageError) {
      process.stderr.write(`tsvm: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));

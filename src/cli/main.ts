/** The `tsvm` command. */
import '../vmm/v8flags.js'; // first: before any WebAssembly is compiled
import '../vmm/cpuclock.js'; // compile times in CPU time (info jit)
import { VmConfigError } from '../vmm/spec.js';
import { UsageError } from './options.js';
import { runCommand } from './run.js';
import { imageCommand } from './image.js';
import { switchCommand } from './switch.js';
import { serveCommand, ServeUsageError } from '../server/serve.js';
import { cloneCommand, createCommand, listCommand, snapshotCommand, startCommand } from './vm.js';
import { VmFolderError } from '../vmm/folder.js';
import { SnapshotError } from '../vmm/snapshot.js';
import { daemonRunning, remoteCommand } from './remote.js';

const HELP = `Usage: tsvm <command> [options]

Commands:
  run        run a virtual PC (see 'tsvm run --help'); with no options, the default Linux guest
  create     make a VM folder NAME.tsvm/ (see 'tsvm create --help')
  start      run a VM folder on this terminal; resumes a suspended VM
             (with a daemon serving the directory: start it in the daemon)
  list       the VM folders here, with state and size (with a daemon: the daemon's VMs)
  snapshot   save, revert, delete or list a VM's snapshots (a tree)
  clone      copy a VM folder under a new name
  switch     a virtual switch joining VMs of several tsvm processes into a private network
  image      build or show the default guest image (see 'tsvm image --help')
  stop       stop a VM in the daemon: tsvm stop NAME (--acpi: press its power button instead)
  console    attach this terminal to a VM's serial console in the daemon (Ctrl-A X detaches)
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
      case 'switch':
        return await switchCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'create':
        return createCommand(rest);
      case 'start':
        return daemonRunning(rest) ? await remoteCommand(cmd, rest) : await startCommand(rest);
      case 'list':
        return daemonRunning(rest) ? await remoteCommand(cmd, rest) : listCommand(rest);
      case 'snapshot':
        return snapshotCommand(rest);
      case 'clone':
        return cloneCommand(rest);
      case 'stop':
      case 'console':
        return await remoteCommand(cmd, rest);
      default:
        throw new UsageError(`unknown command '${cmd}' (see 'tsvm --help')`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof VmConfigError || e instanceof ServeUsageError || e instanceof VmFolderError || e instanceof SnapshotError) {
      process.stderr.write(`tsvm: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));

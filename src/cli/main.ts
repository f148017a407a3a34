/**
 * The `tsvm` command. Each command's module is imported when that command
 * runs, so a short command (clone, snapshot, list) does not load the
 * emulator, the network stack and the daemon: Node's start-up and the
 * command's own work are most of what `tsvm clone --linked` costs.
 */
import { UsageError } from './options.js';

// `tsvm list | head`: a reader that stops early is not an error (as with
// coreutils, the command ends quietly instead of printing a stack trace)
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

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
  stop       stop a VM in the daemon: tsvm stop NAME, which returns once it has stopped
             (--acpi: press its power button instead, and return)
  console    attach this terminal to a VM's serial console in the daemon (Ctrl-A X detaches)
  serve      run the daemon: VMs as services, a REST/WebSocket API and a web console (see 'tsvm serve --help')
  help       show this help

tsvm is an x86 PC virtual machine written in TypeScript.
`;

/**
 * Errors that are the user's to fix: printed as one line, exit status 1.
 * Told by class, from vmm/errors.ts (a module with no imports) and, for
 * `serve`, serve.js, which that command has loaded: loading the daemon to
 * classify a `tsvm clone` error cost 0.1 s on every refused command.
 */
async function userError(e: unknown, cmd: string | undefined): Promise<boolean> {
  if (!(e instanceof Error)) return false;
  if (e instanceof UsageError) return true;
  const { VmConfigError, VmFolderError, SnapshotError } = await import('../vmm/errors.js');
  if (e instanceof VmConfigError || e instanceof VmFolderError || e instanceof SnapshotError) return true;
  return cmd === 'serve' && e instanceof (await import('../server/serve.js')).ServeUsageError;
}

/** The V8 settings and CPU clock that a command running a machine needs, first: before any WebAssembly is compiled. */
async function machineSetup(): Promise<void> {
  await import('../vmm/v8flags.js');
  await import('../vmm/cpuclock.js'); // compile times in CPU time (info jit)
}

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
        await machineSetup();
        return await (await import('./run.js')).runCommand(rest);
      case 'image':
        return (await import('./image.js')).imageCommand(rest);
      case 'switch':
        return await (await import('./switch.js')).switchCommand(rest);
      case 'serve':
        await machineSetup();
        return await (await import('../server/serve.js')).serveCommand(rest);
      case 'create':
        return (await import('./create.js')).createCommand(rest);
      case 'start':
      case 'list': {
        if (cmd === 'start') await machineSetup(); // before remote.js loads the server's modules, as before any machine code
        if ((await import('./daemon.js')).daemonRunning(rest)) return await (await import('./remote.js')).remoteCommand(cmd, rest);
        if (cmd === 'list') return (await import('./vm.js')).listCommand(rest);
        return await (await import('./start.js')).startCommand(rest);
      }
      case 'snapshot':
        return await (await import('./vm.js')).snapshotCommand(rest);
      case 'clone':
        return (await import('./clone.js')).cloneCommand(rest);
      case 'stop':
      case 'console':
        return await (await import('./remote.js')).remoteCommand(cmd, rest);
      default:
        throw new UsageError(`unknown command '${cmd}' (see 'tsvm --help')`);
    }
  } catch (e) {
    if (await userError(e, cmd)) {
      process.stderr.write(`tsvm: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));

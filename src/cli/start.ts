/**
 * `tsvm start NAME`: run a VM folder on this terminal, as `tsvm run` does
 * (run.ts: this is the folder command that loads the emulator).
 */
import { formatHelp, type OptionSpec } from './options.js';
import { DIR, openVm, split } from './vmargs.js';
import { RUN_OPTIONS, runSpec } from './run.js';
import { StatusLine } from './status.js';
import { rtcStartSeconds } from './rtc.js';

const RUNTIME_OPTIONS = ['qmp', 'serial', 'display', 'screendump', 'nographic', 'no-reboot', 'run-for', 'timeout', 'd'];

const START_OPTIONS: OptionSpec[] = [
  DIR,
  ...RUN_OPTIONS.filter((o) => RUNTIME_OPTIONS.includes(o.name)),
  // libvirt's name (virsh start --force-boot): a fresh boot, the saved state thrown away
  { name: 'force-boot', value: null, help: "boot afresh from the disks: discard the suspended state (quit --save's) instead of resuming it; snapshots are kept" },
  { name: 'help', value: null, help: 'show this help' },
];

export async function startCommand(args: string[]): Promise<number> {
  const { words, opts } = split(args, START_OPTIONS, 'start');
  if (opts.has('help')) {
    process.stdout.write(formatHelp('Usage: tsvm start NAME [options]\n\nRuns the VM in NAME.tsvm/ on this terminal, as tsvm run does; resumes it if it was suspended (quit --save),\nor boots it afresh with --force-boot (the suspended state is then discarded).\nIn the monitor (Ctrl-A C): savevm, loadvm, delvm, info snapshots, quit --save.', START_OPTIONS));
    return 0;
  }
  const vm = openVm(words[0], opts, 'start');
  vm.lock();
  try {
    const spec = { ...vm.spec, rtcEpochSec: rtcStartSeconds(vm.config.rtc, Date.now(), -new Date().getTimezoneOffset()) };
    return await runSpec(spec, opts, { status: new StatusLine(process.stderr), bootLabel: vm.name, command: 'start', baseDir: vm.path, vm, forceBoot: opts.has('force-boot') });
  } finally {
    vm.unlock();
  }
}

/**
 * The monitor (Ctrl-A C): a few of QEMU's human-monitor commands for looking
 * at and controlling a running VM.
 */
import type { VmRunner } from './runner.js';
import { formatTree, type VmFolder } from './folder.js';
import { revertSnapshot } from './revert.js';
import { machineState } from './snapshot.js';
import { jitInfo } from '../jit/info.js';

export interface MonitorResult {
  output: string;
  quit?: boolean;
}

const HELP = `info registers   the CPU registers
info cpus        the virtual CPUs and where they are
info jit         instructions run per tier, code compiled, region exits by reason
info network     the NICs, their backends, frames waiting and frames dropped
system_reset     reset the machine
quit | q         stop the VM and exit
help             this list`;

const VM_HELP = `savevm TAG       save the whole machine (CPU, devices, RAM, disks) as snapshot TAG
loadvm TAG       go back to snapshot TAG
delvm TAG        delete snapshot TAG
info snapshots   the snapshot tree and where the VM is in it
quit --save      suspend: save the machine so the next tsvm start resumes it`;

/** Run one monitor command; call it between slices (the runner's call()). */
export function runMonitorCommand(runner: VmRunner, line: string, vm?: VmFolder): MonitorResult {
  const m = runner.machine;
  const cmd = line.trim().replace(/\s+/g, ' ');
  const [verb, ...args] = cmd.split(' ');
  if (['savevm', 'loadvm', 'delvm'].includes(verb) || cmd === 'info snapshots' || cmd === 'quit --save') {
    if (!vm) return { output: `${cmd.startsWith('info') ? 'snapshots' : verb} need a VM folder: create one with tsvm create NAME and run it with tsvm start NAME` };
    try {
      return vmCommand(runner, vm, verb, args, cmd);
    } catch (e) {
      return { output: `${verb}: ${(e as Error).message}` };
    }
  }
  switch (cmd) {
    case 'info registers':
    case 'info reg':
      return { output: runner.cpuDump() };
    case 'info cpus': {
      const c = m.cpu;
      const mode = c.protectedMode ? (c.vm86 ? 'v8086' : 'protected') : 'real';
      return { output: `* CPU #0: pc=0x${((c.segBase[1] + c.eip) >>> 0).toString(16).padStart(8, '0')} (${mode} mode)${c.halted ? ' (halted)' : ''} thread_id=main` };
    }
    case 'info jit':
      return { output: jitInfo(m.cpu, m.jit) };
    case 'info network':
      return { output: formatNetworkInfo(m.networkInfo()) };
    case 'system_reset':
      m.requestReset();
      return { output: 'resetting the machine' };
    case 'quit':
    case 'q':
      return { output: '', quit: true };
    case 'help':
    case '?':
      return { output: vm ? `${HELP}\n${VM_HELP}` : HELP };
    default:
      return { output: `unknown command: '${cmd}' (help lists the commands)` };
  }
}

function vmCommand(runner: VmRunner, vm: VmFolder, verb: string, args: string[], cmd: string): MonitorResult {
  const m = runner.machine;
  if (cmd === 'info snapshots') return { output: formatTree(vm.tree()) };
  if (cmd === 'quit --save') {
    vm.suspend(machineState(m, vm.spec));
    return { output: `saved; tsvm start ${vm.name} resumes here`, quit: true };
  }
  const tag = args[0];
  if (!tag) return { output: `${verb} needs a snapshot name: ${verb} TAG` };
  switch (verb) {
    case 'savevm': {
      const n = vm.saveSnapshot(tag, args.slice(1).join(' '), machineState(m, vm.spec));
      return { output: `snapshot ${n.name} saved` };
    }
    case 'loadvm':
      revertSnapshot(vm, tag, m);
      return { output: `back at snapshot ${tag}` };
    default:
      vm.deleteSnapshot(tag);
      return { output: `snapshot ${tag} deleted` };
  }
}

/** `info network`: a line per NIC as QEMU writes it, its backend under it, and the frames waiting and dropped. */
export function formatNetworkInfo(nics: ReturnType<VmRunner['machine']['networkInfo']>): string {
  if (nics.length === 0) return 'no NICs';
  const out: string[] = [];
  for (const n of nics) {
    out.push(`net${n.index}: index=${n.index},type=nic,model=${n.model},macaddr=${n.mac}`);
    out.push(` \\ ${n.backend.kind}${n.backend.note ? ` (${n.backend.note})` : ''}`);
    out.push(`   frames waiting for the NIC ${n.backend.queued}; dropped: ${n.backend.dropped} in the backend's queue, ${n.nicDropped} at the NIC`);
  }
  return out.join('\n');
}

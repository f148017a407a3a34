/**
 * The monitor (Ctrl-A C): a few of QEMU's human-monitor commands for looking
 * at and controlling a running VM.
 */
import type { VmRunner } from './runner.js';

export interface MonitorResult {
  output: string;
  quit?: boolean;
}

const HELP = `info registers   the CPU registers
info cpus        the virtual CPUs and where they are
system_reset     reset the machine
quit | q         stop the VM and exit
help             this list`;

/** Run one monitor command; call it between slices (the runner's call()). */
export function runMonitorCommand(runner: VmRunner, line: string): MonitorResult {
  const m = runner.machine;
  const cmd = line.trim().replace(/\s+/g, ' ');
  switch (cmd) {
    case 'info registers':
    case 'info reg':
      return { output: runner.cpuDump() };
    case 'info cpus': {
      const c = m.cpu;
      const mode = c.protectedMode ? (c.vm86 ? 'v8086' : 'protected') : 'real';
      return { output: `* CPU #0: pc=0x${((c.segBase[1] + c.eip) >>> 0).toString(16).padStart(8, '0')} (${mode} mode)${c.halted ? ' (halted)' : ''} thread_id=main` };
    }
    case 'system_reset':
      m.requestReset();
      return { output: 'resetting the machine' };
    case 'quit':
    case 'q':
      return { output: '', quit: true };
    case 'help':
    case '?':
      return { output: HELP };
    default:
      return { output: `unknown command: '${cmd}' (help lists the commands)` };
  }
}

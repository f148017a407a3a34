/** Human-readable CPU state for `-d cpu` and the monitor. */
import type { Cpu } from '../cpu/cpu.js';

const h = (v: number, d = 8) => (v >>> 0).toString(16).toUpperCase().padStart(d, '0');

export function formatCpuState(cpu: Cpu): string {
  const r = cpu.reg32;
  const segs = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDT', 'TR'];
  const lines = [
    `EAX=${h(r[0])} EBX=${h(r[3])} ECX=${h(r[1])} EDX=${h(r[2])}`,
    `ESI=${h(r[6])} EDI=${h(r[7])} EBP=${h(r[5])} ESP=${h(r[4])}`,
    `EIP=${h(cpu.eip)} EFL=${h(cpu.getFlags())} CPL=${cpu.cpl} ${cpu.protectedMode ? (cpu.vm86 ? 'v8086' : 'protected') : 'real'} mode${cpu.halted ? ' HLT' : ''}`,
  ];
  for (let s = 0; s < 8; s++) {
    lines.push(`${segs[s].padEnd(3)}=${h(cpu.sreg[s], 4)} ${h(cpu.segBase[s])} ${h(cpu.segLimit[s])} ${h(cpu.segAttr[s], 4)}`);
  }
  lines.push(`GDT=     ${h(cpu.gdtBase)} ${h(cpu.gdtLimit)}`);
  lines.push(`IDT=     ${h(cpu.idtBase)} ${h(cpu.idtLimit)}`);
  lines.push(`CR0=${h(cpu.cr0)} CR2=${h(cpu.cr2)} CR3=${h(cpu.cr3)} CR4=${h(cpu.cr4)}`);
  lines.push(`DR6=${h(cpu.dr[6])} DR7=${h(cpu.dr[7])}`);
  lines.push(`instructions=${cpu.instructionsRun}`);
  return lines.join('\n');
}

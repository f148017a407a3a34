/**
 * Task-state segments: the inner-privilege stacks an interrupt or call gate
 * switches to, and hardware task switching (SDM vol. 3, chapter 7).
 */
import type { Cpu } from './cpu.js';
import { Seg, Vec } from './consts.js';

/** What started a task switch (it decides the busy bit, NT and the back link). */
export const enum TaskSource {
  JMP = 0,
  CALL = 1,
  INT = 2,
  IRET = 3,
}

/**
 * Read SS:ESP for privilege level `dpl` from the current TSS into cpu.tssSs / cpu.tssEsp.
 * Raises #TS(TR) if the TSS is too short to hold them.
 */
export function readTssStack(cpu: Cpu, dpl: number, ext: number): void {
  const type = (cpu.segAttr[Seg.TR] & 0xf);
  const base = cpu.segBase[Seg.TR];
  const limit = cpu.segLimit[Seg.TR] >>> 0;
  if ((type & 8) !== 0) {
    const off = 4 + dpl * 8;
    if (off + 5 > limit) cpu.raiseErr(Vec.TS, (cpu.sreg[Seg.TR] & 0xfffc) + ext);
    cpu.tssEsp = cpu.sysRead32((base + off) | 0);
    cpu.tssSs = cpu.sysRead16((base + off + 4) | 0);
  } else {
    const off = 2 + dpl * 4;
    if (off + 3 > limit) cpu.raiseErr(Vec.TS, (cpu.sreg[Seg.TR] & 0xfffc) + ext);
    cpu.tssEsp = cpu.sysRead16((base + off) | 0);
    cpu.tssSs = cpu.sysRead16((base + off + 2) | 0);
  }
}

/** Switch to the task whose TSS (or task gate's TSS) selector is `sel`. */
export function taskSwitch(cpu: Cpu, sel: number, source: TaskSource, retEip: number, ext: number): void {
  // Implemented in full by the protected-mode work; until then a task switch is refused as #GP.
  void source;
  void retEip;
  cpu.raiseGP((sel & 0xfffc) + ext);
}

/**
 * I/O permission for IN/OUT/INS/OUTS (SDM vol. 1, 19.5): always allowed in
 * real mode and when CPL <= IOPL; otherwise (and always in v8086 mode) every
 * bit for the accessed ports in the TSS I/O bitmap must be clear, or #GP(0).
 */
export function checkIoPermission(cpu: Cpu, port: number, len: number): void {
  if (!cpu.protectedMode) return;
  if (!cpu.vm86 && cpu.cpl <= ((cpu.flags >> 12) & 3)) return;
  const type = cpu.segAttr[Seg.TR] & 0xf;
  const limit = cpu.segLimit[Seg.TR] >>> 0;
  if ((type & 8) === 0 || limit < 0x67) cpu.raiseGP(0);
  const base = cpu.segBase[Seg.TR];
  const mapOff = cpu.sysRead16((base + 0x66) | 0) + (port >>> 3);
  if (mapOff + 1 > limit) cpu.raiseGP(0);
  const bits = cpu.sysRead16((base + mapOff) | 0);
  if ((bits >>> (port & 7)) & ((1 << len) - 1)) cpu.raiseGP(0);
}

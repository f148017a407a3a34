/**
 * Debug facilities (SDM vol. 3, chapter 17): instruction breakpoints in
 * DR0-DR3, the T bit of a TSS, DR6 status bits and DR7 general detect.
 * Single-stepping (EFLAGS.TF) and RF are handled in Cpu._slowStep, which
 * calls in here. Nothing in this file runs on the hot path: the run loop only
 * diverts to the slow step while `cpu.debugActive` (recomputed by
 * updateDebugActive whenever DR7 or a pending debug trap changes) or TF/RF is set.
 */
import type { Cpu } from './cpu.js';
import { F, Seg, Vec } from './consts.js';

/** DR6 status bits. */
export const enum DR6 {
  B0 = 0x1,
  BD = 0x2000,
  BS = 0x4000,
  BT = 0x8000,
}

/** DR7 fields. */
export const enum DR7 {
  /** L0 G0 .. L3 G3 */
  ENABLES = 0xff,
  LOCAL = 0x55,
  GD = 0x2000,
}

export function updateDebugActive(cpu: Cpu): void {
  cpu.debugActive = (cpu.dr[7] & DR7.ENABLES) !== 0 || cpu.debugTrap !== 0;
}

/** Queue a debug trap (DR6 bits `bits`) to be delivered before the next instruction. */
export function scheduleDebugTrap(cpu: Cpu, bits: number): void {
  cpu.debugTrap |= bits;
  cpu.debugActive = true;
}

/** A queued trap (T bit of a new task): sets DR6 and returns true when #DB must be delivered now. */
export function takeDebugTrap(cpu: Cpu): boolean {
  const bits = cpu.debugTrap;
  if (bits === 0) return false;
  cpu.debugTrap = 0;
  updateDebugActive(cpu);
  cpu.dr[6] |= bits;
  return true;
}

/**
 * Instruction breakpoints (DR7 R/W = 00) on the next instruction's linear
 * address. Returns true when an enabled one matches (a fault: #DB before the
 * instruction). RF=1 suppresses them for one instruction. Like QEMU, B0-B3
 * report every matching breakpoint, enabled or not.
 */
export function codeBreakpoint(cpu: Cpu): boolean {
  const dr7 = cpu.dr[7];
  if ((dr7 & DR7.ENABLES) === 0 || (cpu.flags & F.RF) !== 0) return false;
  const lin = (cpu.segBase[Seg.CS] + cpu.eip) | 0;
  let hits = 0;
  let enabled = false;
  for (let i = 0; i < 4; i++) {
    if (((dr7 >>> (16 + i * 4)) & 3) !== 0 || cpu.dr[i] !== lin) continue;
    hits |= 1 << i;
    if (((dr7 >>> (i * 2)) & 3) !== 0) enabled = true;
  }
  if (!enabled) return false;
  cpu.dr[6] = (cpu.dr[6] & ~0xf) | hits;
  return true;
}

/** MOV to or from a debug register with DR7.GD set: #DB (a fault) with DR6.BD, and GD cleared for the handler. */
export function checkGeneralDetect(cpu: Cpu): void {
  if ((cpu.dr[7] & DR7.GD) === 0) return;
  cpu.dr[6] |= DR6.BD;
  cpu.dr[7] &= ~DR7.GD;
  cpu.raise(Vec.DB);
}

/**
 * Debug facilities (SDM vol. 3, chapter 17): instruction, data and I/O
 * breakpoints in DR0-DR3, the T bit of a TSS, DR6 status bits and DR7
 * general detect. Single-stepping (EFLAGS.TF) and RF are handled in
 * Cpu._slowStep, which calls in here. Nothing in this file runs on the hot
 * path: the run loop only diverts to the slow step while `cpu.debugActive`
 * (recomputed by updateDebugActive whenever DR0-DR3, DR7, CR4.DE or a pending
 * debug trap changes) or TF/RF is set.
 *
 * Data breakpoints cost nothing while none is armed: the linear pages that
 * hold armed ones (at most four, since a breakpoint is at most 8 aligned
 * bytes) are kept out of the software TLB (Cpu.translate never caches them),
 * so every access to them takes the slow path of the rd and wr methods, which calls
 * dataBreakpoint(). A hit only records the DR6 bits (cpu.debugHits); the
 * slow step delivers #DB as a trap after the instruction. Compiled blocks
 * never run while any breakpoint is enabled, since debugActive sends every
 * instruction through the slow step.
 */
import type { Cpu } from './cpu.js';
import { CR4, F, Seg, Vec } from './consts.js';

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

/** DR7 R/W field values (bits 16+4n..17+4n). */
const enum RW {
  EXEC = 0,
  WRITE = 1,
  IO = 2,
  ACCESS = 3,
}

/** R/W field of breakpoint n. */
function bpType(dr7: number, n: number): number {
  return (dr7 >>> (16 + n * 4)) & 3;
}

/** Length in bytes of breakpoint n: LEN 00/01/11 = 1/2/4 bytes; 10 (undefined on the P6) is taken as 8, as QEMU and later CPUs do. */
function bpLen(dr7: number, n: number): number {
  const l = (dr7 >>> (18 + n * 4)) & 3;
  return l === 2 ? 8 : l + 1;
}

/**
 * Recompute what the run loop and the memory slow paths need to know about
 * the debug registers: debugActive, which data/I/O breakpoints are armed, and
 * the linear pages of the data ones, whose TLB entries are dropped so that
 * accesses there miss and reach the check.
 */
export function updateDebugActive(cpu: Cpu): void {
  const dr7 = cpu.dr[7];
  cpu.debugActive = (dr7 & DR7.ENABLES) !== 0 || cpu.debugTrap !== 0;
  let data = false;
  let io = false;
  const pages = cpu.dataBpPage;
  for (let i = 0; i < 4; i++) {
    const old = pages[i];
    pages[i] = -1;
    if (old !== -1) cpu.invalidatePage(old << 12);
    if (((dr7 >>> (i * 2)) & 3) === 0) continue;
    const t = bpType(dr7, i);
    if (t === RW.WRITE || t === RW.ACCESS) {
      data = true;
      pages[i] = cpu.dr[i] >>> 12;
      cpu.invalidatePage(cpu.dr[i]);
    } else if (t === RW.IO && (cpu.cr4 & CR4.DE) !== 0) {
      io = true;
    }
  }
  cpu.dataBpArmed = data;
  cpu.ioBpArmed = io;
}

/** True when linear page `page` holds an armed data breakpoint (its TLB entry must stay empty). */
export function isDataBpPage(cpu: Cpu, page: number): boolean {
  const p = cpu.dataBpPage;
  return p[0] === page || p[1] === page || p[2] === page || p[3] === page;
}

/**
 * A data access of `len` bytes at `lin` (only called from the memory slow
 * paths while cpu.dataBpArmed): record every enabled data breakpoint it
 * overlaps. The breakpoint's address is aligned down to its length (SDM
 * 17.2.5). The trap is delivered by the slow step after the instruction.
 */
export function dataBreakpoint(cpu: Cpu, lin: number, len: number, write: boolean): void {
  const dr7 = cpu.dr[7];
  for (let i = 0; i < 4; i++) {
    if (((dr7 >>> (i * 2)) & 3) === 0) continue;
    const t = bpType(dr7, i);
    if (t !== RW.ACCESS && (t !== RW.WRITE || !write)) continue;
    const n = bpLen(dr7, i);
    const base = cpu.dr[i] & ~(n - 1);
    // overlap of [lin, lin+len) and [base, base+n), modulo 2^32
    if (((lin - base) >>> 0) < n || ((base - lin) >>> 0) < len) cpu.debugHits |= 1 << i;
  }
}

/** An I/O access of `len` bytes at `port` with I/O breakpoints armed (CR4.DE=1, R/W=10): record the hits. */
export function ioBreakpoint(cpu: Cpu, port: number, len: number): void {
  const dr7 = cpu.dr[7];
  for (let i = 0; i < 4; i++) {
    if (((dr7 >>> (i * 2)) & 3) === 0 || bpType(dr7, i) !== RW.IO) continue;
    const n = bpLen(dr7, i);
    const base = cpu.dr[i] & 0xffff & ~(n - 1);
    if (((port - base) >>> 0) < n || ((base - port) >>> 0) < len) cpu.debugHits |= 1 << i;
  }
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
    if (bpType(dr7, i) !== RW.EXEC || cpu.dr[i] !== lin) continue;
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

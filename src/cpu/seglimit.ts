/**
 * Segment limit and type checks on data and stack accesses (SDM vol. 3, 5.3
 * "Limit checking" and 5.4-5.5; the #GP/#SS rows of every instruction in
 * vol. 2): expand-up and expand-down limits (byte or page granular: the
 * cached limit is already scaled), accesses that straddle the limit or wrap
 * past the top, writes to read-only data or to code, reads of execute-only
 * code, a null DS/ES/FS/GS, and the 64 KiB limits of real and v8086 mode.
 *
 * The checks cost nothing while segments are flat. `updateSegChecks` runs
 * whenever a segment cache or the mode changes and sets two bits per segment
 * in `cpu.segSlow`: bit s when a read through segment s needs checking, bit
 * 8 + s for a write. A segment is "flat and permissive" for reads when it is
 * usable, readable, expand-up and its limit is 4 GiB (then no offset and no
 * size can fail); for writes when it is also writable data. Every access site
 * tests its bit (one AND with a field) and calls `segCheck` only when it is
 * set. Compiled blocks are specialised on the segments they use being flat
 * (src/jit/blocks.ts, BlockCache.flatMask): their inline loads and stores carry no check.
 * Base addresses do not matter, so Linux's per-CPU FS and TLS GS are flat.
 */
import type { Cpu } from './cpu.js';
import { Attr, Seg, Vec } from './consts.js';
import type { Descriptor } from './segments.js';

/** segSlow bit for writes through segment s: 1 << (s + SEG_WRITE). */
export const SEG_WRITE = 8;
/** segSlow bit: reads through SS. */
export const SS_READ = 1 << Seg.SS;
/** segSlow bit: writes through SS. */
export const SS_WRITE = 1 << (Seg.SS + SEG_WRITE);

/** Recompute cpu.segSlow from the segment caches and the mode. */
export function updateSegChecks(cpu: Cpu): void {
  const pm = cpu.protectedMode && !cpu.vm86;
  let slow = 0;
  for (let s = 0; s < 6; s++) {
    const lim = cpu.segLimit[s];
    let rd: boolean;
    let wr: boolean;
    if (!pm) {
      // real and v8086 mode check limits only (a 4 GiB limit is "unreal mode")
      rd = wr = lim === -1;
    } else {
      const a = cpu.segAttr[s];
      const code = (a & Attr.CODE) !== 0;
      const big = lim === -1 && (a & (Attr.P | Attr.S)) === (Attr.P | Attr.S) && (code || (a & Attr.DC) === 0);
      rd = big && (!code || (a & Attr.RW) !== 0);
      wr = big && !code && (a & Attr.RW) !== 0;
    }
    if (!rd) slow |= 1 << s;
    if (!wr) slow |= 1 << (s + SEG_WRITE);
  }
  cpu.segSlow = slow;
}

/**
 * Is [off, off + len) inside a segment with these cached attributes and
 * (scaled) limit? Expand-down data segments (protected mode only) hold the
 * offsets above the limit up to 0xFFFF, or 0xFFFFFFFF with B=1. Nothing
 * wraps: an access that runs past the top of an expand-up segment whose limit
 * is below 4 GiB is outside it.
 */
export function inLimit(attr: number, limit: number, off: number, len: number, expandDown: boolean): boolean {
  const lo = off >>> 0;
  const hi = lo + len - 1;
  const lim = limit >>> 0;
  if (expandDown) return lo > lim && hi <= ((attr & Attr.DB) !== 0 ? 0xffffffff : 0xffff);
  return lim === 0xffffffff || hi <= lim;
}

/**
 * The checks of one access of `len` bytes at offset `off` through segment
 * `seg`; raises #SS(0) for SS, #GP(0) otherwise (SDM: a null selector, a
 * type the access may not use, or an offset beyond the limit).
 */
export function segCheck(cpu: Cpu, seg: number, off: number, len: number, write: boolean): void {
  const a = cpu.segAttr[seg];
  let expandDown = false;
  if (cpu.protectedMode && !cpu.vm86) {
    // a null selector leaves the cache unusable (attr 0): #GP(0)
    if ((a & (Attr.P | Attr.S)) !== (Attr.P | Attr.S)) fault(cpu, seg);
    if ((a & Attr.CODE) !== 0) {
      if (write || (a & Attr.RW) === 0) cpu.raiseGP(0);
    } else {
      if (write && (a & Attr.RW) === 0) cpu.raiseGP(0);
      expandDown = (a & Attr.DC) !== 0;
    }
  }
  if (!inLimit(a, cpu.segLimit[seg], off, len, expandDown)) fault(cpu, seg);
}

function fault(cpu: Cpu, seg: number): never {
  if (seg === Seg.SS) cpu.raiseErr(Vec.SS, 0);
  return cpu.raiseGP(0);
}

/** The checks of the ModRM memory operand (cpu.eaSeg, cpu.eaOff) plus `delta` bytes, `len` bytes long. */
export function eaCheck(cpu: Cpu, delta: number, len: number, write: boolean): void {
  const seg = cpu.eaSeg;
  if ((cpu.segSlow & (1 << (seg + (write ? SEG_WRITE : 0)))) !== 0) segCheck(cpu, seg, (cpu.eaOff + delta) | 0, len, write);
}

/**
 * Check `count` pushes of `size` bytes below ESP on the current stack, before
 * the first is written (PUSHA, far CALL, interrupt frames: the instruction
 * faults with nothing written).
 */
export function checkPushes(cpu: Cpu, count: number, size: number): void {
  if ((cpu.segSlow & SS_WRITE) === 0) return;
  const esp = cpu.reg32[4];
  for (let i = 1; i <= count; i++) segCheck(cpu, Seg.SS, (esp - i * size) & cpu.ssMask, size, true);
}

/**
 * Check `count` pushes of `size` bytes below `esp` on a stack not loaded yet
 * (the inner stack from the TSS): #SS(error code) when one falls outside it.
 */
export function checkNewStack(d: Descriptor, esp: number, count: number, size: number, cpu: Cpu, error: number): void {
  const mask = (d.hi & 0x400000) !== 0 ? -1 : 0xffff;
  const expandDown = (d.hi & 0xc00) === 0x400;
  for (let i = 1; i <= count; i++) {
    if (!inLimit(d.attr, d.limit, (esp - i * size) & mask, size, expandDown)) cpu.raiseErr(Vec.SS, error);
  }
}

/**
 * Integer arithmetic helpers shared by the opcode groups: the eight ALU
 * operations, shifts and rotates, multiply and divide. Flag results follow
 * the SDM; where it leaves a flag undefined we produce what QEMU produces.
 */
import { Lazy, type Cpu } from '../cpu.js';
import { F, Vec } from '../consts.js';

/** ALU operation numbers, as encoded in the opcode / ModRM reg field. */
export const enum Alu {
  ADD = 0,
  OR = 1,
  ADC = 2,
  SBB = 3,
  AND = 4,
  SUB = 5,
  XOR = 6,
  CMP = 7,
}

/** Perform ALU op `k` on a and b at width `top`+1 bits, set flags, return the result. */
export function alu(cpu: Cpu, k: number, a: number, b: number, top: number): number {
  let r: number;
  switch (k) {
    case Alu.ADD:
      r = (a + b) | 0;
      cpu.setLazy(Lazy.ADD, a, b, r, top);
      return r;
    case Alu.OR:
      r = a | b;
      cpu.setLazy(Lazy.LOGIC, 0, 0, r, top);
      return r;
    case Alu.ADC:
      r = (a + b + cpu.getCF()) | 0;
      cpu.setLazy(Lazy.ADD, a, b, r, top);
      return r;
    case Alu.SBB:
      r = (a - b - cpu.getCF()) | 0;
      cpu.setLazy(Lazy.SUB, a, b, r, top);
      return r;
    case Alu.AND:
      r = a & b;
      cpu.setLazy(Lazy.LOGIC, 0, 0, r, top);
      return r;
    case Alu.XOR:
      r = a ^ b;
      cpu.setLazy(Lazy.LOGIC, 0, 0, r, top);
      return r;
    default: // SUB, CMP
      r = (a - b) | 0;
      cpu.setLazy(Lazy.SUB, a, b, r, top);
      return r;
  }
}

/** Shift/rotate operation numbers (ModRM reg field of C0/C1/D0-D3). */
export const enum Sh {
  ROL = 0,
  ROR = 1,
  RCL = 2,
  RCR = 3,
  SHL = 4,
  SHR = 5,
  SAL = 6,
  SAR = 7,
}

/**
 * Shift or rotate `val` (bits beyond the width ignored) by `count` at width `bits`.
 * A masked count of zero changes neither the operand nor the flags.
 */
export function shift(cpu: Cpu, k: number, val: number, count: number, bits: number): number {
  count &= 31;
  if (count === 0) return val;
  const top = bits - 1;
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const x = val & mask;
  let r: number;
  let cf: number;
  switch (k) {
    case Sh.ROL: {
      const c = count & top;
      r = c === 0 ? x : ((x << c) | (x >>> (bits - c))) & mask;
      cf = r & 1;
      cpu.setFlagBits(F.CF | F.OF, cf | ((((r >>> top) & 1) ^ cf) !== 0 ? F.OF : 0));
      return r;
    }
    case Sh.ROR: {
      const c = count & top;
      r = c === 0 ? x : ((x >>> c) | (x << (bits - c))) & mask;
      cf = (r >>> top) & 1;
      const of = cf ^ ((r >>> (top - 1)) & 1);
      cpu.setFlagBits(F.CF | F.OF, cf | (of ? F.OF : 0));
      return r;
    }
    case Sh.RCL: {
      const c = bits === 32 ? count : count % (bits + 1);
      if (c === 0) return val;
      r = x;
      cf = cpu.getCF();
      for (let i = 0; i < c; i++) {
        const out = (r >>> top) & 1;
        r = ((r << 1) | cf) & mask;
        cf = out;
      }
      const of = ((x ^ r) >>> top) & 1;
      cpu.setFlagBits(F.CF | F.OF, cf | (of ? F.OF : 0));
      return r;
    }
    case Sh.RCR: {
      const c = bits === 32 ? count : count % (bits + 1);
      if (c === 0) return val;
      r = x;
      cf = cpu.getCF();
      for (let i = 0; i < c; i++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf << top)) & mask;
        cf = out;
      }
      const of = ((x ^ r) >>> top) & 1;
      cpu.setFlagBits(F.CF | F.OF, cf | (of ? F.OF : 0));
      return r;
    }
    case Sh.SHL:
    case Sh.SAL: {
      const src = x << (count - 1); // QEMU keeps the value shifted by count-1 to derive CF and OF
      r = (src << 1) & mask;
      cf = (src >>> top) & 1;
      cpu.setResultFlags(r, top, cf, cf ^ ((r >>> top) & 1), 0);
      return r;
    }
    case Sh.SHR: {
      const src = x >>> (count - 1);
      r = (src >>> 1) & mask;
      cf = src & 1;
      cpu.setResultFlags(r, top, cf, ((src ^ r) >>> top) & 1, 0);
      return r;
    }
    default: {
      // SAR: sign-extend to 32 bits first
      const sx = (x << (31 - top)) >> (31 - top);
      const src = sx >> (count - 1);
      r = (src >> 1) & mask;
      cf = src & 1;
      cpu.setResultFlags(r, top, cf, 0, 0);
      return r;
    }
  }
}

/** SHLD (left=true) / SHRD of `dst` with bits from `src`, at 16 or 32 bits. */
export function shiftDouble(cpu: Cpu, left: boolean, dst: number, src: number, count: number, bits: number): number {
  count &= 31;
  if (count === 0) return dst;
  const top = bits - 1;
  let r: number;
  let cf: number;
  if (bits === 32) {
    if (left) {
      r = (dst << count) | (src >>> (32 - count));
      cf = (dst >>> (32 - count)) & 1;
    } else {
      r = (dst >>> count) | (src << (32 - count));
      cf = (dst >>> (count - 1)) & 1;
    }
  } else {
    // 16-bit with counts above 16 shift through dst:src:dst, as Intel CPUs (and QEMU) do.
    const d = dst & 0xffff;
    const s = src & 0xffff;
    if (left) {
      // 48-bit d:s:d, take the top 16 bits after shifting left
      const hi = d * 4294967296 + s * 65536 + d;
      const shifted = hi * Math.pow(2, count);
      r = Math.floor(shifted / 4294967296) & 0xffff;
      cf = Math.floor(shifted / 281474976710656) & 1;
    } else {
      const lo = d + s * 65536 + d * 4294967296;
      r = Math.floor(lo / Math.pow(2, count)) & 0xffff;
      cf = Math.floor(lo / Math.pow(2, count - 1)) & 1;
    }
  }
  const of = ((dst ^ r) >>> top) & 1;
  cpu.setResultFlags(r, top, cf, of, 0);
  return bits === 32 ? r : r & 0xffff;
}

/** Work registers for 32x32 -> 64-bit products and 64/32 divisions. */
export const wide = { lo: 0, hi: 0 };

/** Unsigned 32x32 -> 64 multiply into wide.lo / wide.hi. */
export function mulU32(a: number, b: number): void {
  const a0 = a & 0xffff,
    a1 = a >>> 16,
    b0 = b & 0xffff,
    b1 = b >>> 16;
  const p00 = a0 * b0,
    p01 = a0 * b1,
    p10 = a1 * b0,
    p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  wide.hi = (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
  wide.lo = (mid << 16) | (p00 & 0xffff);
}

/** Signed 32x32 -> 64 multiply into wide.lo / wide.hi. */
export function mulS32(a: number, b: number): void {
  mulU32(a, b);
  let hi = wide.hi;
  if (a < 0) hi = (hi - b) | 0;
  if (b < 0) hi = (hi - a) | 0;
  wide.hi = hi;
}

/**
 * Unsigned 64/32 division of hi:lo by d into wide.lo (quotient) / wide.hi (remainder).
 * Returns false when the quotient does not fit in 32 bits (the caller raises #DE).
 */
export function divU64(hi: number, lo: number, d: number): boolean {
  const du = d >>> 0;
  let r = hi >>> 0;
  if (r >= du) return false;
  let n = r * 65536 + (lo >>> 16);
  const q1 = Math.floor(n / du);
  r = n - q1 * du;
  n = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(n / du);
  r = n - q0 * du;
  wide.lo = (q1 * 65536 + q0) | 0;
  wide.hi = r | 0;
  return true;
}

/** MUL / IMUL / DIV / IDIV on AL/AX/EAX (F6/F7 /4../7). */
export function mulDiv(cpu: Cpu, k: number, src: number, bits: number): void {
  const r32 = cpu.reg32;
  const r16 = cpu.reg16;
  const r8 = cpu.reg8;
  switch (k) {
    case 4: // MUL
      if (bits === 8) {
        const p = r8[0] * (src & 0xff);
        r16[0] = p;
        const c = p > 0xff ? 1 : 0;
        cpu.setResultFlags(p & 0xff, 7, c, c, 0);
      } else if (bits === 16) {
        const p = r16[0] * (src & 0xffff);
        r16[0] = p;
        r16[4] = p >>> 16;
        const c = p > 0xffff ? 1 : 0;
        cpu.setResultFlags(p & 0xffff, 15, c, c, 0);
      } else {
        mulU32(r32[0], src);
        r32[0] = wide.lo;
        r32[2] = wide.hi;
        const c = wide.hi !== 0 ? 1 : 0;
        cpu.setResultFlags(wide.lo, 31, c, c, 0);
      }
      return;
    case 5: // IMUL
      if (bits === 8) {
        const p = ((r8[0] << 24) >> 24) * ((src << 24) >> 24);
        r16[0] = p;
        const c = p !== (p << 24) >> 24 ? 1 : 0;
        cpu.setResultFlags(p & 0xff, 7, c, c, 0);
      } else if (bits === 16) {
        const p = ((r16[0] << 16) >> 16) * ((src << 16) >> 16);
        r16[0] = p;
        r16[4] = p >> 16;
        const c = p !== (p << 16) >> 16 ? 1 : 0;
        cpu.setResultFlags(p & 0xffff, 15, c, c, 0);
      } else {
        mulS32(r32[0], src);
        r32[0] = wide.lo;
        r32[2] = wide.hi;
        const c = wide.hi !== wide.lo >> 31 ? 1 : 0;
        cpu.setResultFlags(wide.lo, 31, c, c, 0);
      }
      return;
    case 6: // DIV
      if (bits === 8) {
        const d = src & 0xff;
        if (d === 0) cpu.raise(Vec.DE);
        const n = r16[0];
        const q = Math.floor(n / d);
        if (q > 0xff) cpu.raise(Vec.DE);
        r8[0] = q;
        r8[1] = n % d;
      } else if (bits === 16) {
        const d = src & 0xffff;
        if (d === 0) cpu.raise(Vec.DE);
        const n = (r16[4] * 65536 + r16[0]) >>> 0;
        const q = Math.floor(n / d);
        if (q > 0xffff) cpu.raise(Vec.DE);
        r16[0] = q;
        r16[4] = n % d;
      } else {
        if (src === 0) cpu.raise(Vec.DE);
        if (!divU64(r32[2], r32[0], src)) cpu.raise(Vec.DE);
        r32[0] = wide.lo;
        r32[2] = wide.hi;
      }
      return;
    default: // IDIV
      if (bits === 8) {
        const d = (src << 24) >> 24;
        if (d === 0) cpu.raise(Vec.DE);
        const n = (r16[0] << 16) >> 16;
        const q = Math.trunc(n / d);
        if (q > 127 || q < -128) cpu.raise(Vec.DE);
        r8[0] = q;
        r8[1] = n % d;
      } else if (bits === 16) {
        const d = (src << 16) >> 16;
        if (d === 0) cpu.raise(Vec.DE);
        const n = (r16[4] << 16) | r16[0];
        const q = Math.trunc(n / d);
        if (q > 32767 || q < -32768) cpu.raise(Vec.DE);
        r16[0] = q;
        r16[4] = n % d;
      } else {
        if (src === 0) cpu.raise(Vec.DE);
        let hi = r32[2];
        let lo = r32[0];
        const negN = hi < 0;
        if (negN) {
          lo = (~lo + 1) | 0;
          hi = (~hi + (lo === 0 ? 1 : 0)) | 0;
        }
        const negD = src < 0;
        const d = negD ? -src | 0 : src;
        if (!divU64(hi, lo, d)) cpu.raise(Vec.DE);
        const q = wide.lo >>> 0;
        const neg = negN !== negD;
        if (neg ? q > 0x80000000 : q > 0x7fffffff) cpu.raise(Vec.DE);
        r32[0] = neg ? -q | 0 : q | 0;
        r32[2] = negN ? -wide.hi | 0 : wide.hi;
      }
      return;
  }
}

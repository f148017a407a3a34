// x87 transcendental instructions: F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN,
// FSIN, FCOS, FSINCOS.
//
// Special operands (NaN, infinities, zeros, denormals, domain errors, the
// |x| >= 2^63 range limit of the trigonometric functions) follow the SDM
// instruction pages exactly. Finite results are computed with the host's
// float64 Math functions on the operands rounded to float64 (scaled so the
// exponent range never matters) and widened to extended precision: they carry
// about 52 correct bits, where hardware gives about 63. docs/fpu.md lists this.

import type { Fpu } from '../fpu.js';
import { Cls, Ex, INDEF_HI, INDEF_SE, classify } from './ext80.js';

const TWO32 = 4294967296;
/** 2^63: the trigonometric instructions leave larger operands alone and set C2. */
const TRIG_LIMIT_EXP = 63;

/** Significand of an unpacked operand as a double in [1, 2) (rounded to 53 bits). */
function sigDouble(hi: number, lo: number): number {
  return ((hi >>> 0) * TWO32 + (lo >>> 0)) / 9223372036854775808;
}

/** Execute D9 F0+j for the transcendental j values (0,1,2,3,9,11,14,15). */
export function fpuTranscendental(f: Fpu, j: number): void {
  switch (j) {
    case 0:
    case 14:
    case 15:
      unary(f, j);
      return;
    case 2:
    case 11:
      unaryPush(f, j);
      return;
    case 1:
    case 3:
    case 9:
      binary(f, j);
      return;
    default:
      return;
  }
}

/** ST0 as a double v and exponent scale s so that ST0 = v * 2^s, with v within [1, 2). Returns s. */
let _v = 0;
function split(f: Fpu, i: number): number {
  const m = f._math;
  const e = m.unpack(f._stSe(i), f._stHi(i), f._stLo(i));
  const v = sigDouble(m.iHi, m.iLo);
  _v = (f._stSe(i) & 0x8000) !== 0 ? -v : v;
  return e;
}

/** F2XM1 (0), FSIN (14), FCOS (15): ST0 <- fn(ST0). */
function unary(f: Fpu, j: number): void {
  const m = f._math;
  if (f._stEmpty(0)) {
    if (f._stUnderflow()) f._stSet(0, INDEF_SE, INDEF_HI, 0);
    return;
  }
  const se = f._stSe(0);
  const hi = f._stHi(0);
  const lo = f._stLo(0);
  const c = classify(se, hi, lo);
  const s = (se >>> 15) & 1;
  if (j !== 0) f._stSetCC(0, 0, 0, 0);
  if (m.nan1(se, hi, lo)) {
    // result decided
  } else if (c === Cls.INF) {
    if (j === 0) {
      if (s !== 0) m.fromDouble(-1, 0, 64, false);
      else m.fromDouble(Infinity, 0, 64, false);
    } else m.invalid();
  } else if (c === Cls.ZERO) {
    if (j === 15) m.fromDouble(1, 0, 64, false);
    else m.fromDouble(s !== 0 ? -0 : 0, 0, 64, false);
  } else {
    if (c === Cls.DENORMAL) m.flags |= Ex.DE;
    if ((m.flags & Ex.DE & ~m.masks) !== 0) {
      f._stCommit(m.flags);
      return;
    }
    const e = split(f, 0);
    const v = _v;
    if (j !== 0 && e >= TRIG_LIMIT_EXP) {
      // Out of range: operand unchanged, C2 = 1.
      f._stSetCC(0, 0, 1, 0);
      f._stCommit(m.flags);
      return;
    }
    if (e < -40) {
      // Tiny operand: sin x and 2^x-1 = x*ln2 to full precision; cos x = 1.
      if (j === 14) m.fromDouble(v, e, 64, true);
      else if (j === 0) m.fromDouble(v * Math.LN2, e, 64, true);
      else m.fromDouble(1, 0, 64, true);
    } else {
      const x = v * 2 ** e;
      const r = j === 14 ? Math.sin(x) : j === 15 ? Math.cos(x) : Math.expm1(x * Math.LN2);
      m.fromDouble(r, 0, 64, true);
    }
  }
  if (f._stCommit(m.flags)) {
    f._stSetCC(0, 0, 0, 0);
    f._stSet(0, m.rSe, m.rHi, m.rLo);
  }
}

/** FPTAN (2): ST0 <- tan, push 1.0. FSINCOS (11): ST0 <- sin, push cos. */
function unaryPush(f: Fpu, j: number): void {
  const m = f._math;
  if (f._stEmpty(0)) {
    if (f._stUnderflow()) {
      f._stSet(0, INDEF_SE, INDEF_HI, 0);
      if (f._stCanPush()) f._stPush(INDEF_SE, INDEF_HI, 0);
    }
    return;
  }
  const se = f._stSe(0);
  const hi = f._stHi(0);
  const lo = f._stLo(0);
  const c = classify(se, hi, lo);
  const s = (se >>> 15) & 1;
  let aSe: number;
  let aHi: number;
  let aLo: number;
  if (c !== Cls.ZERO && c < Cls.INF) {
    if (c === Cls.DENORMAL) m.flags |= Ex.DE;
    if ((m.flags & Ex.DE & ~m.masks) !== 0) {
      f._stCommit(m.flags);
      return;
    }
    const e = split(f, 0);
    if (e >= TRIG_LIMIT_EXP) {
      f._stSetCC(0, 0, 1, 0);
      return;
    }
  }
  if (!f._stCanPush()) return;
  if (m.nan1(se, hi, lo)) {
    aSe = m.rSe;
    aHi = m.rHi;
    aLo = m.rLo;
  } else if (c === Cls.INF) {
    m.invalid();
    aSe = m.rSe;
    aHi = m.rHi;
    aLo = m.rLo;
  } else if (c === Cls.ZERO) {
    aSe = se;
    aHi = 0;
    aLo = 0;
    if (j === 2) m.fromDouble(1, 0, 64, false);
    else m.fromDouble(1, 0, 64, false);
  } else {
    const e = split(f, 0);
    const v = _v;
    let r1: number;
    let r2: number;
    if (e < -40) {
      // tan x = sin x = x to full precision; cos x = 1.
      m.fromDouble(v, e, 64, true);
      r2 = 1;
    } else {
      const x = v * 2 ** e;
      r1 = j === 2 ? Math.tan(x) : Math.sin(x);
      r2 = j === 2 ? 1 : Math.cos(x);
      m.fromDouble(r1, 0, 64, true);
    }
    aSe = m.rSe;
    aHi = m.rHi;
    aLo = m.rLo;
    m.fromDouble(r2, 0, 64, j !== 2);
  }
  if (c >= Cls.INF && c !== Cls.ZERO) {
    // NaN or invalid: both results are that NaN.
    m.rSe = aSe;
    m.rHi = aHi;
    m.rLo = aLo;
  }
  void s;
  if (f._stCommit(m.flags)) {
    f._stSetCC(0, 0, 0, 0);
    f._stSet(0, aSe, aHi, aLo);
    f._stPush(m.rSe, m.rHi, m.rLo);
  }
}

/** FYL2X (1), FPATAN (3), FYL2XP1 (9): ST1 <- fn(ST1, ST0), pop. */
function binary(f: Fpu, j: number): void {
  const m = f._math;
  if (f._stEmpty(0) || f._stEmpty(1)) {
    if (f._stUnderflow()) {
      f._stSet(1, INDEF_SE, INDEF_HI, 0);
      f._stPop();
    }
    return;
  }
  const xSe = f._stSe(0);
  const xHi = f._stHi(0);
  const xLo = f._stLo(0);
  const ySe = f._stSe(1);
  const yHi = f._stHi(1);
  const yLo = f._stLo(1);
  const cx = classify(xSe, xHi, xLo);
  const cy = classify(ySe, yHi, yLo);
  const xs = (xSe >>> 15) & 1;
  const ys = (ySe >>> 15) & 1;
  if (!m.nan2(xSe, xHi, xLo, ySe, yHi, yLo)) {
    if (cx === Cls.DENORMAL || cy === Cls.DENORMAL) m.flags |= Ex.DE;
    if ((m.flags & Ex.DE & ~m.masks) !== 0) {
      f._stCommit(m.flags);
      return;
    }
    // Precision control does not apply to transcendentals (internal mul/div are full precision).
    const pc = m.pc;
    m.pc = 64;
    if (j === 3) fpatan(f, cx, cy, xs, ys);
    else if (j === 1) fyl2x(f, cx, cy, xs, ys);
    else fyl2xp1(f, cx, cy, xs, ys);
    m.pc = pc;
  }
  if (f._stCommit(m.flags)) {
    f._stSetCC(0, 0, 0, 0);
    f._stSet(1, m.rSe, m.rHi, m.rLo);
    f._stPop();
  }
}

function fpatan(f: Fpu, cx: number, cy: number, xs: number, ys: number): void {
  const m = f._math;
  if (cx === Cls.ZERO || cx === Cls.INF || cy === Cls.ZERO || cy === Cls.INF) {
    // Math.atan2 follows the same special-value table as the SDM's FPATAN.
    const xd = cx === Cls.ZERO ? (xs ? -0 : 0) : cx === Cls.INF ? (xs ? -Infinity : Infinity) : xs ? -1 : 1;
    const yd = cy === Cls.ZERO ? (ys ? -0 : 0) : cy === Cls.INF ? (ys ? -Infinity : Infinity) : ys ? -1 : 1;
    const r = Math.atan2(yd, xd);
    const exact = r === 0 || (cx !== Cls.INF && cy === Cls.ZERO && xs === 0);
    if (cx !== Cls.ZERO && cx !== Cls.INF && cy === Cls.INF) m.fromDouble(r, 0, 64, true);
    else if (cx === Cls.INF && cy !== Cls.ZERO && cy !== Cls.INF) m.fromDouble(r, 0, 64, !exact);
    else m.fromDouble(r, 0, 64, !exact);
    return;
  }
  const ex = split(f, 0);
  const vx = _v;
  const ey = split(f, 1);
  const vy = _v;
  if (xs === 0 && ey - ex < -60) {
    // atan(y/x) = y/x to full precision.
    m.div(f._stSe(1), f._stHi(1), f._stLo(1), f._stSe(0), f._stHi(0), f._stLo(0));
    m.flags |= Ex.PE;
    return;
  }
  const d = Math.max(ex, ey);
  m.fromDouble(Math.atan2(vy * 2 ** (ey - d), vx * 2 ** (ex - d)), 0, 64, true);
}

/** log2 of a finite positive ST0 as a double, accurate near 1. */
function log2Of(f: Fpu): number {
  const m = f._math;
  const e = m.unpack(f._stSe(0), f._stHi(0), f._stLo(0));
  const hi = m.iHi >>> 0;
  const lo = m.iLo >>> 0;
  if (e === 0) return Math.log1p((hi - 0x80000000) * 2 ** -31 + lo * 2 ** -63) / Math.LN2;
  if (e === -1) return Math.log1p((hi - 0x100000000) * 2 ** -32 + lo * 2 ** -64) / Math.LN2;
  return e + Math.log2(sigDouble(hi, lo));
}

function fyl2x(f: Fpu, cx: number, cy: number, xs: number, ys: number): void {
  const m = f._math;
  if (xs !== 0 && cx !== Cls.ZERO) {
    m.invalid();
    return;
  }
  if (cx === Cls.ZERO) {
    if (cy === Cls.ZERO) m.invalid();
    else {
      if (cy !== Cls.INF) m.flags |= Ex.ZE;
      m.fromDouble(ys ? Infinity : -Infinity, 0, 64, false);
    }
    return;
  }
  if (cx === Cls.INF) {
    if (cy === Cls.ZERO) m.invalid();
    else m.fromDouble(ys ? -Infinity : Infinity, 0, 64, false);
    return;
  }
  // x finite positive.
  const isOne = f._stSe(0) === 0x3fff && f._stHi(0) === (0x80000000 | 0) && f._stLo(0) === 0;
  if (cy === Cls.INF) {
    if (isOne) m.invalid();
    else {
      const below = f._stSe(0) < 0x3fff;
      m.fromDouble((ys !== 0) !== below ? -Infinity : Infinity, 0, 64, false);
    }
    return;
  }
  if (cy === Cls.ZERO || isOne) {
    const below = f._stSe(0) < 0x3fff;
    m.fromDouble((ys !== 0) !== below && !isOne ? -0 : isOne && ys !== 0 ? -0 : 0, 0, 64, false);
    return;
  }
  const l = log2Of(f);
  m.fromDouble(l, 0, 64, true);
  const lSe = m.rSe;
  const lHi = m.rHi;
  const lLo = m.rLo;
  m.mul(f._stSe(1), f._stHi(1), f._stLo(1), lSe, lHi, lLo);
}

function fyl2xp1(f: Fpu, cx: number, cy: number, xs: number, ys: number): void {
  const m = f._math;
  if (cx === Cls.INF) {
    if (xs !== 0 || cy === Cls.ZERO) m.invalid();
    else m.fromDouble(ys ? -Infinity : Infinity, 0, 64, false);
    return;
  }
  if (cx === Cls.ZERO) {
    if (cy === Cls.INF) m.invalid();
    else m.fromDouble((xs ^ ys) !== 0 ? -0 : 0, 0, 64, false);
    return;
  }
  const e = split(f, 0);
  const v = _v;
  if (cy === Cls.ZERO) {
    m.fromDouble((xs ^ ys) !== 0 ? -0 : 0, 0, 64, false);
    return;
  }
  if (xs !== 0 && e >= 0) {
    // x <= -1: outside the domain of log2(1 + x) (the SDM leaves |x| >= 1 - sqrt(2)/2 undefined).
    m.invalid();
    return;
  }
  if (cy === Cls.INF) {
    m.fromDouble((xs ^ ys) !== 0 ? -Infinity : Infinity, 0, 64, false);
    return;
  }
  if (e < -60) m.fromDouble(v * Math.LOG2E, e, 64, true);
  else if (e > 60) m.fromDouble(e + Math.log2(v), 0, 64, true); // log2(1 + x) = log2(x) to double precision
  else m.fromDouble(Math.log1p(v * 2 ** e) / Math.LN2, 0, 64, true);
  const lSe = m.rSe;
  const lHi = m.rHi;
  const lLo = m.rLo;
  m.mul(f._stSe(1), f._stHi(1), f._stLo(1), lSe, lHi, lLo);
}

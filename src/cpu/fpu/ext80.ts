// x87 80-bit extended-precision arithmetic on 32-bit integer limbs.
//
// Resources: Intel SDM Vol. 1 ch. 4 and 8 (data formats, rounding, exception
// responses), SoftFloat's floatx80 rounding scheme (roundAndPackFloatx80) whose
// structure this follows. Values travel as packed triples (se, hi, lo):
// se = sign << 15 | biased exponent, hi:lo = the 64-bit significand with the
// explicit integer bit J in hi bit 31; hi and lo are kept as int32.
//
// Every operation is exact then rounded once (IEEE-754 style), with the x87
// specifics: precision control, tininess detected after rounding, masked and
// unmasked overflow/underflow responses, x87 NaN selection rules, unsupported
// encodings (unnormals, pseudo-NaN/infinity) as invalid operands.
// No allocation: all scratch values live in fields of the single instance.

/** Exception flag bits, as in the status word. SF is the stack-fault bit. */
export const enum Ex { IE = 0x01, DE = 0x02, ZE = 0x04, OE = 0x08, UE = 0x10, PE = 0x20, SF = 0x40 }

/** Operand classes. Order matters: everything >= QNAN needs NaN/invalid handling. */
export const enum Cls { ZERO = 0, DENORMAL = 1, NORMAL = 2, INF = 3, QNAN = 4, SNAN = 5, UNSUPPORTED = 6 }

/** Rounding control values (CW bits 10-11). */
export const enum Rc { NEAREST = 0, DOWN = 1, UP = 2, ZERO = 3 }

/** Comparison results. */
export const enum Cmp { GT = 0, LT = 1, EQ = 2, UN = 3 }

const BIAS = 16383;
/** Smallest and largest unbiased exponent of a normal extended value. */
const EMIN = -16382;
const EMAX = 16383;
/** Exponent adjustment for unmasked overflow/underflow with a register destination (SDM 4.9.1.4/5). */
const WRAP = 24576;
/** Significand of the QNaN "real indefinite". */
export const INDEF_HI = 0xc0000000 | 0;
/** Sign/exponent word of the real indefinite. */
export const INDEF_SE = 0xffff;
const TWO32 = 4294967296;

/** Class of a packed extended value. */
export function classify(se: number, hi: number, lo: number): number {
  const exp = se & 0x7fff;
  if (exp === 0) return (hi | lo) === 0 ? Cls.ZERO : Cls.DENORMAL;
  if ((hi | 0) >= 0) return Cls.UNSUPPORTED; // J bit clear with non-zero exponent
  if (exp === 0x7fff) {
    if ((hi & 0x7fffffff) === 0 && lo === 0) return Cls.INF;
    return (hi & 0x40000000) !== 0 ? Cls.QNAN : Cls.SNAN;
  }
  return Cls.NORMAL;
}

/**
 * The arithmetic unit. Set rc/pc/masks, clear flags with begin(), call an
 * operation, read flags/up and the result (rSe, rHi, rLo). Operations OR into
 * flags; a caller decides from the unmasked flags whether to deliver the result.
 */
export class Ext80 {
  /** Rounding control (Rc). */
  rc = 0;
  /** Precision control in significand bits: 24, 53 or 64. */
  pc = 64;
  /** Exception masks (CW bits 0-5): a set bit means masked. */
  masks = 0x3f;
  /** Accumulated exception flags (Ex). */
  flags = 0;
  /** 1 when the last rounding incremented the magnitude (reported in C1). */
  up = 0;
  /** Result, packed. */
  rSe = 0;
  rHi = 0;
  rLo = 0;
  /** Integer results (toInt): high and low 32 bits, two's complement. */
  iHi = 0;
  iLo = 0;
  /** Low three quotient bits of the last remainder, and whether it was partial. */
  q = 0;
  partial = false;
  /** Unpacked operand a: sign, unbiased exponent, normalised significand. */
  private _aS = 0;
  private _aE = 0;
  private _a0 = 0;
  private _a1 = 0;
  private _bS = 0;
  private _bE = 0;
  private _b0 = 0;
  private _b1 = 0;
  private _uS = 0;
  private _uE = 0;
  private _u0 = 0;
  private _u1 = 0;
  /** 96-bit working significand (m0 most significant) and its rounded exponent. */
  private _m0 = 0;
  private _m1 = 0;
  private _m2 = 0;
  private _oE = 0;
  /** 32x32 product. */
  private _ph = 0;
  private _pl = 0;

  /** Start an instruction: clear flags and the round-up indicator. */
  begin(): void {
    this.flags = 0;
    this.up = 0;
  }

  /** Set the result to the QNaN indefinite and raise IE. */
  invalid(): void {
    this.flags |= Ex.IE;
    this.rSe = INDEF_SE;
    this.rHi = INDEF_HI;
    this.rLo = 0;
  }

  private _set(se: number, hi: number, lo: number): void {
    this.rSe = se;
    this.rHi = hi | 0;
    this.rLo = lo | 0;
  }

  /** Unpack into (_uS, _uE, _u0, _u1): sign, unbiased exponent, significand normalised to bit 63. */
  private _unpack(se: number, hi: number, lo: number): void {
    this._uS = (se >>> 15) & 1;
    let e = se & 0x7fff;
    let m0 = hi | 0;
    let m1 = lo | 0;
    if (e === 0) e = 1;
    e -= BIAS;
    if (m0 === 0) {
      m0 = m1;
      m1 = 0;
      e -= 32;
    }
    const n = Math.clz32(m0);
    if (n !== 0) {
      m0 = (m0 << n) | (m1 >>> (32 - n));
      m1 <<= n;
      e -= n;
    }
    this._uE = e;
    this._u0 = m0;
    this._u1 = m1;
  }

  private _unpackA(se: number, hi: number, lo: number): void {
    this._unpack(se, hi, lo);
    this._aS = this._uS;
    this._aE = this._uE;
    this._a0 = this._u0;
    this._a1 = this._u1;
  }

  private _unpackB(se: number, hi: number, lo: number): void {
    this._unpack(se, hi, lo);
    this._bS = this._uS;
    this._bE = this._uE;
    this._b0 = this._u0;
    this._b1 = this._u1;
  }

  /** Shift the working significand right by n bits, ORing lost bits into bit 0 (sticky). */
  private _shr(n: number): void {
    let m0 = this._m0;
    let m1 = this._m1;
    let m2 = this._m2;
    if (n <= 0) return;
    if (n >= 96) {
      m2 = (m0 | m1 | m2) !== 0 ? 1 : 0;
      m0 = 0;
      m1 = 0;
    } else {
      let st = 0;
      while (n >= 32) {
        st |= m2;
        m2 = m1;
        m1 = m0;
        m0 = 0;
        n -= 32;
      }
      if (n > 0) {
        st |= m2 << (32 - n);
        m2 = (m2 >>> n) | (m1 << (32 - n));
        m1 = (m1 >>> n) | (m0 << (32 - n));
        m0 = m0 >>> n;
      }
      if (st !== 0) m2 |= 1;
    }
    this._m0 = m0 | 0;
    this._m1 = m1 | 0;
    this._m2 = m2 | 0;
  }

  /** Normalise the non-zero working significand left; returns the exponent decrement. */
  private _norm(): number {
    let m0 = this._m0;
    let m1 = this._m1;
    let m2 = this._m2;
    let d = 0;
    while (m0 === 0) {
      m0 = m1;
      m1 = m2;
      m2 = 0;
      d += 32;
    }
    const n = Math.clz32(m0);
    if (n !== 0) {
      m0 = (m0 << n) | (m1 >>> (32 - n));
      m1 = (m1 << n) | (m2 >>> (32 - n));
      m2 <<= n;
      d += n;
    }
    this._m0 = m0;
    this._m1 = m1;
    this._m2 = m2;
    return d;
  }

  /**
   * Round the working significand to p bits (24, 53, 64) under rc. Returns
   * 0 exact, 1 inexact rounded down, 2 inexact rounded up, |4 if the
   * significand overflowed (it is then 1.0 and the exponent must be bumped).
   */
  private _roundMant(sign: number, p: number): number {
    let m0 = this._m0;
    let m1 = this._m1;
    const m2 = this._m2;
    let rb: number;
    let st: boolean;
    let lsb: number;
    if (p === 64) {
      rb = m2 >>> 31;
      st = (m2 & 0x7fffffff) !== 0;
      lsb = m1 & 1;
    } else if (p === 53) {
      rb = (m1 >>> 10) & 1;
      st = ((m1 & 0x3ff) | m2) !== 0;
      lsb = (m1 >>> 11) & 1;
    } else {
      rb = (m0 >>> 7) & 1;
      st = ((m0 & 0x7f) | m1 | m2) !== 0;
      lsb = (m0 >>> 8) & 1;
    }
    if (rb === 0 && !st) return 0;
    let inc: boolean;
    const rc = this.rc;
    if (rc === Rc.NEAREST) inc = rb !== 0 && (st || lsb !== 0);
    else if (rc === Rc.DOWN) inc = sign !== 0;
    else if (rc === Rc.UP) inc = sign === 0;
    else inc = false;
    let carry = false;
    if (p === 64) {
      if (inc) {
        m1 = (m1 + 1) | 0;
        if (m1 === 0) {
          m0 = (m0 + 1) | 0;
          carry = m0 === 0;
        }
      }
    } else if (p === 53) {
      m1 &= ~0x7ff;
      if (inc) {
        const t = (m1 >>> 0) + 0x800;
        m1 = t | 0;
        if (t >= TWO32) {
          m0 = (m0 + 1) | 0;
          carry = m0 === 0;
        }
      }
    } else {
      m1 = 0;
      m0 &= ~0xff;
      if (inc) {
        const t = (m0 >>> 0) + 0x100;
        m0 = t | 0;
        carry = t >= TWO32;
      }
    }
    if (carry) m0 = 0x80000000 | 0;
    this._m0 = m0;
    this._m1 = m1;
    this._m2 = 0;
    return (inc ? 2 : 1) | (carry ? 4 : 0);
  }

  /**
   * Round the normalised working significand with unbiased exponent e into a
   * format with precision p and normal exponent range [eMin, eMax]. toReg
   * selects the register-destination responses for unmasked OE/UE (wrapped
   * exponent) versus the memory ones (nothing stored: returns false).
   * On return _m0:_m1 is the rounded significand and _oE its exponent; a clear
   * _m0 bit 31 means a denormal (or zero) with exponent eMin; _oE > eMax means infinity.
   */
  private _roundPack(sign: number, e: number, toReg: boolean, p: number, eMin: number, eMax: number): boolean {
    if (e < eMin) {
      const s0 = this._m0;
      const s1 = this._m1;
      const s2 = this._m2;
      const r0 = this._roundMant(sign, p);
      this._m0 = s0;
      this._m1 = s1;
      this._m2 = s2;
      // Tininess after rounding: tiny unless rounding to p bits with an
      // unbounded exponent would reach 2^eMin.
      const tiny = !(e === eMin - 1 && (r0 & 4) !== 0);
      if (tiny) {
        const unmasked = (this.masks & Ex.UE) === 0;
        if (unmasked) {
          this.flags |= Ex.UE;
          if (!toReg) return false;
          e += WRAP;
        }
        if (unmasked && e < eMin) {
          // Even the biased result is too small: hardware delivers a signed zero, inexact.
          this._m0 = 0;
          this._m1 = 0;
          this._oE = eMin;
          this.flags |= Ex.PE;
          this.up = 0;
          return true;
        }
        if (!unmasked) {
          this._shr(eMin - e);
          const r = this._roundMant(sign, p);
          if (r !== 0) {
            this.flags |= Ex.UE | Ex.PE;
            if ((r & 2) !== 0) this.up = 1;
          }
          this._oE = eMin;
          return true;
        }
      }
    }
    const r = this._roundMant(sign, p);
    if ((r & 4) !== 0) e++;
    if (r !== 0) {
      this.flags |= Ex.PE;
      if ((r & 2) !== 0) this.up = 1;
    }
    if (e > eMax) {
      this.flags |= Ex.OE;
      const unmasked = (this.masks & Ex.OE) === 0;
      if (unmasked) {
        if (!toReg) {
          // Memory destination: nothing stored, and only OE is reported.
          this.flags &= ~Ex.PE;
          this.up = 0;
          return false;
        }
        e -= WRAP;
      }
      if (!unmasked || e > eMax) {
        // Masked response; when even the biased result is too large, hardware delivers infinity.
        this.flags |= Ex.PE;
        const rc = this.rc;
        if (unmasked || rc === Rc.NEAREST || (rc === Rc.UP && sign === 0) || (rc === Rc.DOWN && sign !== 0)) {
          e = eMax + 1;
          this._m0 = 0x80000000 | 0;
          this._m1 = 0;
          this.up = 1;
        } else {
          e = eMax;
          this._m0 = p === 24 ? 0xffffff00 | 0 : -1;
          this._m1 = p === 64 ? -1 : p === 53 ? 0xfffff800 | 0 : 0;
          this.up = 0;
        }
      }
    }
    this._oE = e;
    return true;
  }

  /** Round the working significand (exponent e) to the register format under pc and pack into r*. */
  private _packReg(sign: number, e: number, p: number): void {
    this._roundPack(sign, e, true, p, EMIN, EMAX);
    const oe = this._oE;
    if (oe > EMAX) this._set((sign << 15) | 0x7fff, 0x80000000, 0);
    else this._set((sign << 15) | (this._m0 < 0 ? (oe + BIAS) & 0x7fff : 0), this._m0, this._m1);
  }

  private _zero(sign: number): void {
    this._set(sign << 15, 0, 0);
  }

  private _inf(sign: number): void {
    this._set((sign << 15) | 0x7fff, 0x80000000, 0);
  }

  /**
   * NaN/unsupported handling for two operands. Returns true if the result is
   * decided (IE+indefinite for unsupported, or the x87 NaN choice).
   */
  private _nan2(aSe: number, aHi: number, aLo: number, ca: number, bSe: number, bHi: number, bLo: number, cb: number): boolean {
    if (ca < Cls.QNAN && cb < Cls.QNAN) return false;
    // A NaN or invalid operand takes priority over a denormal memory operand's DE.
    this.flags &= ~Ex.DE;
    if (ca === Cls.UNSUPPORTED || cb === Cls.UNSUPPORTED) {
      this.invalid();
      return true;
    }
    const aNan = ca >= Cls.QNAN;
    const bNan = cb >= Cls.QNAN;
    const aSig = ca === Cls.SNAN;
    const bSig = cb === Cls.SNAN;
    if (aSig || bSig) this.flags |= Ex.IE;
    let pickA: boolean;
    if (aNan && bNan) {
      if (aSig !== bSig) pickA = bSig; // SNaN and QNaN: the QNaN
      else {
        // Larger significand; on a tie the one with the smaller sign/exponent word.
        const ah = (aHi | 0x40000000) >>> 0;
        const bh = (bHi | 0x40000000) >>> 0;
        if (ah !== bh) pickA = ah > bh;
        else if (aLo !== bLo) pickA = aLo >>> 0 > bLo >>> 0;
        else pickA = aSe < bSe;
      }
    } else pickA = aNan;
    if (pickA) this._set(aSe, aHi | 0x40000000, aLo);
    else this._set(bSe, bHi | 0x40000000, bLo);
    return true;
  }

  /** NaN/unsupported handling for two operands (public form for fpu/trans.ts). */
  nan2(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number): boolean {
    return this._nan2(aSe, aHi, aLo, classify(aSe, aHi, aLo), bSe, bHi, bLo, classify(bSe, bHi, bLo));
  }

  /** NaN/unsupported handling for one operand (public form for fpu/trans.ts). */
  nan1(se: number, hi: number, lo: number): boolean {
    return this._nan1(se, hi, lo, classify(se, hi, lo));
  }

  /** NaN/unsupported handling for one operand; true if the result is decided. */
  private _nan1(se: number, hi: number, lo: number, c: number): boolean {
    if (c < Cls.QNAN) return false;
    if (c === Cls.UNSUPPORTED) this.invalid();
    else {
      if (c === Cls.SNAN) this.flags |= Ex.IE;
      this._set(se, hi | 0x40000000, lo);
    }
    return true;
  }

  /** True (stop) when a denormal operand raised an unmasked DE. */
  private _denormStop(ca: number, cb: number): boolean {
    if (ca === Cls.DENORMAL || cb === Cls.DENORMAL) this.flags |= Ex.DE;
    return (this.flags & Ex.DE & ~this.masks) !== 0;
  }

  /** Round and pack an unpacked operand a (used for x+0 and similar). */
  private _packA(sign: number, p: number): void {
    this._m0 = this._a0;
    this._m1 = this._a1;
    this._m2 = 0;
    this._packReg(sign, this._aE, p);
  }

  /** a + b (neg=0) or a - b (neg=1), rounded to pc. */
  add(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number, neg: number): void {
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (this._nan2(aSe, aHi, aLo, ca, bSe, bHi, bLo, cb)) return;
    if (this._denormStop(ca, cb)) return;
    const aS = (aSe >>> 15) & 1;
    const bS = ((bSe >>> 15) & 1) ^ neg;
    if (ca === Cls.INF) {
      if (cb === Cls.INF && aS !== bS) this.invalid();
      else this._inf(aS);
      return;
    }
    if (cb === Cls.INF) {
      this._inf(bS);
      return;
    }
    if (ca === Cls.ZERO && cb === Cls.ZERO) {
      this._zero(aS === bS ? aS : this.rc === Rc.DOWN ? 1 : 0);
      return;
    }
    const p = this.pc;
    if (ca === Cls.ZERO) {
      this._unpackA(bSe, bHi, bLo);
      this._packA(bS, p);
      return;
    }
    this._unpackA(aSe, aHi, aLo);
    if (cb === Cls.ZERO) {
      this._packA(aS, p);
      return;
    }
    this._unpackB(bSe, bHi, bLo);
    const aE = this._aE;
    const bE = this._bE;
    // Order so that x is the operand of larger magnitude.
    const swap = aE < bE || (aE === bE && (this._a0 >>> 0 < this._b0 >>> 0 || (this._a0 === this._b0 && this._a1 >>> 0 < this._b1 >>> 0)));
    const xE = swap ? bE : aE;
    const x0 = swap ? this._b0 : this._a0;
    const x1 = swap ? this._b1 : this._a1;
    const xS = swap ? bS : aS;
    this._m0 = swap ? this._a0 : this._b0;
    this._m1 = swap ? this._a1 : this._b1;
    this._m2 = 0;
    this._shr(xE - (swap ? aE : bE));
    let e = xE;
    if (aS === bS) {
      const t1 = (this._m1 >>> 0) + (x1 >>> 0);
      const t0 = (this._m0 >>> 0) + (x0 >>> 0) + (t1 >= TWO32 ? 1 : 0);
      this._m1 = t1 | 0;
      this._m0 = t0 | 0;
      if (t0 >= TWO32) {
        this._shr(1);
        this._m0 |= 0x80000000;
        e++;
      }
    } else {
      const m2 = this._m2 >>> 0;
      const t2 = 0 - m2;
      const b2 = t2 < 0 ? 1 : 0;
      const t1 = (x1 >>> 0) - (this._m1 >>> 0) - b2;
      const b1 = t1 < 0 ? 1 : 0;
      const t0 = (x0 >>> 0) - (this._m0 >>> 0) - b1;
      this._m0 = t0 | 0;
      this._m1 = t1 | 0;
      this._m2 = t2 | 0;
      if ((this._m0 | this._m1 | this._m2) === 0) {
        this._zero(this.rc === Rc.DOWN ? 1 : 0);
        return;
      }
      e -= this._norm();
    }
    this._packReg(xS, e, p);
  }

  private _mul32(a: number, b: number): void {
    a >>>= 0;
    b >>>= 0;
    const lo = a * (b & 0xffff);
    const hi = a * (b >>> 16);
    const hiLo = hi % 65536;
    const low = lo + hiLo * 65536;
    this._pl = low | 0;
    this._ph = ((hi - hiLo) / 65536 + Math.floor(low / TWO32)) | 0;
  }

  /** a * b rounded to pc. */
  mul(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number): void {
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (this._nan2(aSe, aHi, aLo, ca, bSe, bHi, bLo, cb)) return;
    if (this._denormStop(ca, cb)) return;
    const s = ((aSe ^ bSe) >>> 15) & 1;
    if (ca === Cls.INF || cb === Cls.INF) {
      if (ca === Cls.ZERO || cb === Cls.ZERO) this.invalid();
      else this._inf(s);
      return;
    }
    if (ca === Cls.ZERO || cb === Cls.ZERO) {
      this._zero(s);
      return;
    }
    this._unpackA(aSe, aHi, aLo);
    this._unpackB(bSe, bHi, bLo);
    this._mulSig(this._a0, this._a1, this._b0, this._b1);
    let e = this._aE + this._bE;
    if (this._m0 < 0) e++;
    else this._shl1();
    this._packReg(s, e, this.pc);
  }

  /** 64x64 -> 128-bit product of two significands into m0:m1:m2 (low word folded into the sticky bit). */
  private _mulSig(a0: number, a1: number, b0: number, b1: number): void {
    this._mul32(a1, b1);
    const w0 = this._pl;
    let acc = this._ph >>> 0;
    this._mul32(a0, b1);
    const p01h = this._ph >>> 0;
    acc += this._pl >>> 0;
    this._mul32(a1, b0);
    const p10h = this._ph >>> 0;
    acc += this._pl >>> 0;
    const w1 = acc | 0;
    let acc2 = Math.floor(acc / TWO32) + p01h + p10h;
    this._mul32(a0, b0);
    acc2 += this._pl >>> 0;
    const w2 = acc2 | 0;
    const w3 = (this._ph >>> 0) + Math.floor(acc2 / TWO32);
    this._m0 = w3 | 0;
    this._m1 = w2;
    this._m2 = w1 | (w0 !== 0 ? 1 : 0);
  }

  /** Shift the working significand left by one (used after a product below 2). */
  private _shl1(): void {
    const m0 = this._m0;
    const m1 = this._m1;
    const m2 = this._m2;
    this._m0 = (m0 << 1) | (m1 >>> 31);
    this._m1 = (m1 << 1) | (m2 >>> 31);
    this._m2 = (m2 << 1) | (m2 & 1);
  }

  /** a / b rounded to pc. */
  div(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number): void {
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (this._nan2(aSe, aHi, aLo, ca, bSe, bHi, bLo, cb)) return;
    const s = ((aSe ^ bSe) >>> 15) & 1;
    if (ca === Cls.INF) {
      if (cb === Cls.INF) this.invalid();
      else if (!this._denormStop(Cls.NORMAL, cb)) this._inf(s);
      return;
    }
    if (cb === Cls.INF) {
      if (!this._denormStop(ca, Cls.NORMAL)) this._zero(s);
      return;
    }
    if (cb === Cls.ZERO) {
      // x / 0 raises ZE only, even for a denormal x.
      if (ca === Cls.ZERO) this.invalid();
      else {
        this.flags = (this.flags & ~Ex.DE) | Ex.ZE;
        this._inf(s);
      }
      return;
    }
    if (this._denormStop(ca, cb)) return;
    if (ca === Cls.ZERO) {
      this._zero(s);
      return;
    }
    this._unpackA(aSe, aHi, aLo);
    this._unpackB(bSe, bHi, bLo);
    const d0 = this._b0 >>> 0;
    const d1 = this._b1 >>> 0;
    let rt = 0;
    let r0 = this._a0 >>> 0;
    let r1 = this._a1 >>> 0;
    let e = this._aE - this._bE;
    if (r0 < d0 || (r0 === d0 && r1 < d1)) {
      rt = r0 >>> 31;
      r0 = ((r0 << 1) | (r1 >>> 31)) >>> 0;
      r1 = (r1 << 1) >>> 0;
      e--;
    }
    // Restoring division: 64 quotient bits, then a round bit, then the sticky remainder.
    let q0 = 0;
    let q1 = 0;
    let rbit = 0;
    for (let i = 0; i < 65; i++) {
      let bit = 0;
      if (rt !== 0 || r0 > d0 || (r0 === d0 && r1 >= d1)) {
        let t1 = r1 - d1;
        let bor = 0;
        if (t1 < 0) {
          t1 += TWO32;
          bor = 1;
        }
        r0 = r0 - d0 - bor;
        if (r0 < 0) r0 += TWO32;
        r1 = t1;
        rt = 0;
        bit = 1;
      }
      if (i < 64) {
        q0 = ((q0 << 1) | (q1 >>> 31)) >>> 0;
        q1 = ((q1 << 1) | bit) >>> 0;
      } else rbit = bit;
      rt = r0 >>> 31;
      r0 = ((r0 << 1) | (r1 >>> 31)) >>> 0;
      r1 = (r1 << 1) >>> 0;
    }
    this._m0 = q0 | 0;
    this._m1 = q1 | 0;
    this._m2 = (rbit << 31) | ((rt | r0 | r1) !== 0 ? 1 : 0);
    this._packReg(s, e, this.pc);
  }

  /** sqrt(a) rounded to pc. */
  sqrt(aSe: number, aHi: number, aLo: number): void {
    const ca = classify(aSe, aHi, aLo);
    if (this._nan1(aSe, aHi, aLo, ca)) return;
    const s = (aSe >>> 15) & 1;
    if (ca === Cls.ZERO) {
      this._zero(s);
      return;
    }
    if (s !== 0) {
      this.invalid();
      return;
    }
    if (ca === Cls.INF) {
      this._inf(0);
      return;
    }
    if (this._denormStop(ca, Cls.NORMAL)) return;
    this._unpackA(aSe, aHi, aLo);
    const e = this._aE;
    // value = M * 2^E with E even; M = m (e odd) or 2m (e even), M < 2^66.
    let x0: number;
    let x1: number;
    let x2: number;
    const odd = (e & 1) !== 0;
    // Radicand shift register X (96 bits) holds M << 30 so that M's bit 65 is X bit 95.
    const a0 = this._a0 >>> 0;
    const a1 = this._a1 >>> 0;
    if (odd) {
      // M = m: bits 63..0 -> X bits 93..30
      x0 = (a0 >>> 2) >>> 0;
      x1 = ((a0 << 30) | (a1 >>> 2)) >>> 0;
      x2 = (a1 << 30) >>> 0;
    } else {
      // M = 2m: bits 64..1 -> X bits 94..31
      x0 = (a0 >>> 1) >>> 0;
      x1 = ((a0 << 31) | (a1 >>> 1)) >>> 0;
      x2 = (a1 << 31) >>> 0;
    }
    const halfE = odd ? (e - 63) / 2 : (e - 64) / 2;
    // Digit-by-digit square root: 66 root bits in R (r2:r1:r0), remainder Q (q2:q1:q0).
    let r2 = 0;
    let r1 = 0;
    let r0 = 0;
    let q2 = 0;
    let q1 = 0;
    let q0 = 0;
    for (let i = 0; i < 66; i++) {
      const pair = x0 >>> 30;
      x0 = ((x0 << 2) | (x1 >>> 30)) >>> 0;
      x1 = ((x1 << 2) | (x2 >>> 30)) >>> 0;
      x2 = (x2 << 2) >>> 0;
      // Q = Q << 2 | pair
      q2 = ((q2 << 2) | (q1 >>> 30)) >>> 0;
      q1 = ((q1 << 2) | (q0 >>> 30)) >>> 0;
      q0 = ((q0 << 2) | pair) >>> 0;
      // T = R << 2 | 1
      const t2 = ((r2 << 2) | (r1 >>> 30)) >>> 0;
      const t1 = ((r1 << 2) | (r0 >>> 30)) >>> 0;
      const t0 = ((r0 << 2) | 1) >>> 0;
      let bit = 0;
      if (q2 > t2 || (q2 === t2 && (q1 > t1 || (q1 === t1 && q0 >= t0)))) {
        let d0 = q0 - t0;
        let bor = 0;
        if (d0 < 0) {
          d0 += TWO32;
          bor = 1;
        }
        let d1 = q1 - t1 - bor;
        bor = 0;
        if (d1 < 0) {
          d1 += TWO32;
          bor = 1;
        }
        q2 = q2 - t2 - bor;
        q1 = d1;
        q0 = d0;
        bit = 1;
      }
      r2 = ((r2 << 1) | (r1 >>> 31)) >>> 0;
      r1 = ((r1 << 1) | (r0 >>> 31)) >>> 0;
      r0 = ((r0 << 1) | bit) >>> 0;
    }
    const sticky = (q2 | q1 | q0) !== 0 ? 1 : 0;
    // R has its top bit at position 64 or 65.
    let eo: number;
    if ((r2 & 2) !== 0) {
      this._m0 = (r2 << 30) | (r1 >>> 2);
      this._m1 = (r1 << 30) | (r0 >>> 2);
      this._m2 = (r0 << 30) | sticky;
      eo = 65 + halfE - 33;
    } else {
      this._m0 = (r2 << 31) | (r1 >>> 1);
      this._m1 = (r1 << 31) | (r0 >>> 1);
      this._m2 = (r0 << 31) | sticky;
      eo = 64 + halfE - 33;
    }
    this._packReg(0, eo, this.pc);
  }

  /** Compare a with b. quiet: only SNaN raises IE (FUCOM); otherwise any NaN does (FCOM). */
  compare(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number, quiet: boolean): number {
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (ca >= Cls.QNAN || cb >= Cls.QNAN) {
      this.flags &= ~Ex.DE;
      if (!quiet || (ca !== Cls.QNAN && ca >= Cls.SNAN) || (cb !== Cls.QNAN && cb >= Cls.SNAN)) this.flags |= Ex.IE;
      return Cmp.UN;
    }
    if (ca === Cls.DENORMAL || cb === Cls.DENORMAL) this.flags |= Ex.DE;
    if (ca === Cls.ZERO && cb === Cls.ZERO) return Cmp.EQ;
    const aS = (aSe >>> 15) & 1;
    const bS = (bSe >>> 15) & 1;
    if (ca === Cls.ZERO) return bS !== 0 ? Cmp.GT : Cmp.LT;
    if (cb === Cls.ZERO) return aS !== 0 ? Cmp.LT : Cmp.GT;
    if (aS !== bS) return aS !== 0 ? Cmp.LT : Cmp.GT;
    this._unpackA(aSe, aHi, aLo);
    this._unpackB(bSe, bHi, bLo);
    let c: number;
    if (this._aE !== this._bE) c = this._aE > this._bE ? 1 : -1;
    else if (this._a0 !== this._b0) c = this._a0 >>> 0 > this._b0 >>> 0 ? 1 : -1;
    else if (this._a1 !== this._b1) c = this._a1 >>> 0 > this._b1 >>> 0 ? 1 : -1;
    else return Cmp.EQ;
    if (aS !== 0) c = -c;
    return c > 0 ? Cmp.GT : Cmp.LT;
  }

  /**
   * Round the significand of a finite non-zero value with unbiased exponent
   * e < 63 to an integer under rc: integer in _m0:_m1. Returns _roundMant's code.
   */
  private _roundInt(sign: number, e: number, m0: number, m1: number): number {
    this._m0 = m0;
    this._m1 = m1;
    this._m2 = 0;
    this._shr(63 - e);
    return this._roundMant(sign, 64);
  }

  /** FRNDINT: round to an integer under rc (precision control does not apply). */
  roundInt(aSe: number, aHi: number, aLo: number): void {
    const ca = classify(aSe, aHi, aLo);
    if (this._nan1(aSe, aHi, aLo, ca)) return;
    if (ca === Cls.ZERO || ca === Cls.INF) {
      this._set(aSe, aHi, aLo);
      return;
    }
    if (this._denormStop(ca, Cls.NORMAL)) return;
    this._unpackA(aSe, aHi, aLo);
    const s = this._aS;
    if (this._aE >= 63) {
      this._set(aSe, aHi, aLo);
      return;
    }
    const r = this._roundInt(s, this._aE, this._a0, this._a1);
    if (r !== 0) {
      this.flags |= Ex.PE;
      if ((r & 2) !== 0) this.up = 1;
    }
    if ((this._m0 | this._m1) === 0) {
      this._zero(s);
      return;
    }
    this._m2 = 0;
    const e = 63 - this._norm();
    this._set((s << 15) | (e + BIAS), this._m0, this._m1);
  }

  /**
   * Convert to a signed integer of `bits` (16, 32, 64) under rc (or chopping).
   * Returns false on invalid (NaN, infinity, unsupported, out of range): IE is
   * raised and the caller stores the integer indefinite if IE is masked.
   * The result is in iHi:iLo (two's complement, sign-extended).
   */
  toInt(aSe: number, aHi: number, aLo: number, bits: number, chop: boolean): boolean {
    const ca = classify(aSe, aHi, aLo);
    if (ca === Cls.ZERO) {
      this.iHi = 0;
      this.iLo = 0;
      return true;
    }
    if (ca >= Cls.INF) {
      this.flags |= Ex.IE;
      return false;
    }
    this._unpackA(aSe, aHi, aLo);
    const s = this._aS;
    const e = this._aE;
    let m0: number;
    let m1: number;
    let r = 0;
    if (e >= 63) {
      if (e > 63) {
        this.flags |= Ex.IE;
        return false;
      }
      m0 = this._a0;
      m1 = this._a1;
    } else {
      const saved = this.rc;
      if (chop) this.rc = Rc.ZERO;
      r = this._roundInt(s, e, this._a0, this._a1);
      this.rc = saved;
      m0 = this._m0;
      m1 = this._m1;
    }
    // Range: magnitude <= 2^(bits-1) - 1 + s.
    let ok: boolean;
    const u0 = m0 >>> 0;
    const u1 = m1 >>> 0;
    if (bits === 64) ok = u0 < 0x80000000 || (s !== 0 && u0 === 0x80000000 && u1 === 0);
    else if (bits === 32) ok = u0 === 0 && (u1 < 0x80000000 || (s !== 0 && u1 === 0x80000000));
    else ok = u0 === 0 && (u1 < 0x8000 || (s !== 0 && u1 === 0x8000));
    if (!ok) {
      this.flags |= Ex.IE;
      return false;
    }
    if (r !== 0) {
      this.flags |= Ex.PE;
      if ((r & 2) !== 0) this.up = 1;
    }
    if (s !== 0) {
      // negate 64-bit
      const l = (-u1) >>> 0;
      const h = (~u0 + (u1 === 0 ? 1 : 0)) >>> 0;
      this.iHi = h | 0;
      this.iLo = l | 0;
    } else {
      this.iHi = m0 | 0;
      this.iLo = m1 | 0;
    }
    return true;
  }

  /** Exact conversion of a signed 64-bit integer (hi:lo) to extended. */
  fromInt(hi: number, lo: number): void {
    let s = 0;
    let h = hi >>> 0;
    let l = lo >>> 0;
    if ((hi | 0) < 0) {
      s = 1;
      l = (-l) >>> 0;
      h = (~h + (l === 0 ? 1 : 0)) >>> 0;
    }
    if ((h | l) === 0) {
      this._zero(0);
      return;
    }
    this._m0 = h | 0;
    this._m1 = l | 0;
    this._m2 = 0;
    const e = 63 - this._norm();
    this._set((s << 15) | (e + BIAS), this._m0, this._m1);
  }

  /**
   * float32 bits to extended. quiet: FLD semantics (SNaN -> IE and quieted);
   * otherwise the NaN keeps its signalling bit for the arithmetic that follows.
   * A denormal raises DE.
   */
  fromF32(bits: number, quiet: boolean): void {
    const s = bits >>> 31;
    const exp = (bits >>> 23) & 0xff;
    const frac = bits & 0x7fffff;
    if (exp === 0xff) {
      if (frac === 0) this._inf(s);
      else {
        let hi = 0x80000000 | (frac << 8);
        if (quiet && (frac & 0x400000) === 0) {
          this.flags |= Ex.IE;
          hi |= 0x40000000;
        }
        this._set((s << 15) | 0x7fff, hi, 0);
      }
      return;
    }
    if (exp === 0) {
      if (frac === 0) {
        this._zero(s);
        return;
      }
      this.flags |= Ex.DE;
      const n = Math.clz32(frac) - 8; // shift to put the leading one at bit 23
      this._set((s << 15) | (-126 - n + BIAS), (frac << (8 + n)) | 0, 0);
      return;
    }
    this._set((s << 15) | (exp - 127 + BIAS), 0x80000000 | (frac << 8), 0);
  }

  /** float64 bits (hi:lo) to extended; see fromF32. */
  fromF64(hi: number, lo: number, quiet: boolean): void {
    const s = hi >>> 31;
    const exp = (hi >>> 20) & 0x7ff;
    const fh = hi & 0xfffff;
    if (exp === 0x7ff) {
      if ((fh | lo) === 0) this._inf(s);
      else {
        let h = 0x80000000 | (fh << 11) | (lo >>> 21);
        if (quiet && (fh & 0x80000) === 0) {
          this.flags |= Ex.IE;
          h |= 0x40000000;
        }
        this._set((s << 15) | 0x7fff, h, lo << 11);
      }
      return;
    }
    if (exp === 0) {
      if ((fh | lo) === 0) {
        this._zero(s);
        return;
      }
      this.flags |= Ex.DE;
      this._m0 = (fh << 11) | (lo >>> 21);
      this._m1 = lo << 11;
      this._m2 = 0;
      // (fh:lo) << 11 gives bit 63 the weight 2^-1022; normalising shifts it further.
      const e = -1022 - this._norm();
      this._set((s << 15) | (e + BIAS), this._m0, this._m1);
      return;
    }
    this._set((s << 15) | (exp - 1023 + BIAS), 0x80000000 | (fh << 11) | (lo >>> 21), lo << 11);
  }

  /**
   * Extended to float32 bits in iLo, rounded under rc (precision control does
   * not apply). Returns false when nothing may be stored (IE unmasked, or an
   * unmasked overflow/underflow); flags say which.
   */
  toF32(aSe: number, aHi: number, aLo: number): boolean {
    const ca = classify(aSe, aHi, aLo);
    const s = (aSe >>> 15) & 1;
    if (ca === Cls.ZERO) this.iLo = s << 31;
    else if (ca === Cls.INF) this.iLo = (s << 31) | 0x7f800000;
    else if (ca === Cls.UNSUPPORTED) {
      this.flags |= Ex.IE;
      this.iLo = 0xffc00000 | 0;
    } else if (ca >= Cls.QNAN) {
      if (ca === Cls.SNAN) this.flags |= Ex.IE;
      this.iLo = (s << 31) | 0x7fc00000 | ((aHi >>> 8) & 0x7fffff);
    } else {
      this._unpackA(aSe, aHi, aLo);
      this._m0 = this._a0;
      this._m1 = this._a1;
      this._m2 = 0;
      if (!this._roundPack(s, this._aE, false, 24, -126, 127)) return false;
      const oe = this._oE;
      if (oe > 127) this.iLo = (s << 31) | 0x7f800000;
      else this.iLo = (s << 31) | ((this._m0 < 0 ? oe + 127 : 0) << 23) | ((this._m0 >>> 8) & 0x7fffff);
    }
    return (this.flags & Ex.IE & ~this.masks) === 0;
  }

  /** Extended to float64 bits in iHi:iLo; see toF32. */
  toF64(aSe: number, aHi: number, aLo: number): boolean {
    const ca = classify(aSe, aHi, aLo);
    const s = (aSe >>> 15) & 1;
    if (ca === Cls.ZERO) {
      this.iHi = s << 31;
      this.iLo = 0;
    } else if (ca === Cls.INF) {
      this.iHi = (s << 31) | 0x7ff00000;
      this.iLo = 0;
    } else if (ca === Cls.UNSUPPORTED) {
      this.flags |= Ex.IE;
      this.iHi = 0xfff80000 | 0;
      this.iLo = 0;
    } else if (ca >= Cls.QNAN) {
      if (ca === Cls.SNAN) this.flags |= Ex.IE;
      this.iHi = (s << 31) | 0x7ff80000 | ((aHi >>> 11) & 0xfffff);
      this.iLo = (aHi << 21) | (aLo >>> 11);
    } else {
      this._unpackA(aSe, aHi, aLo);
      this._m0 = this._a0;
      this._m1 = this._a1;
      this._m2 = 0;
      if (!this._roundPack(s, this._aE, false, 53, -1022, 1023)) return false;
      const oe = this._oE;
      if (oe > 1023) {
        this.iHi = (s << 31) | 0x7ff00000;
        this.iLo = 0;
      } else {
        this.iHi = (s << 31) | ((this._m0 < 0 ? oe + 1023 : 0) << 20) | ((this._m0 >>> 11) & 0xfffff);
        this.iLo = (this._m0 << 21) | (this._m1 >>> 11);
      }
    }
    return (this.flags & Ex.IE & ~this.masks) === 0;
  }

  /**
   * FPREM (ieee=false, truncating quotient) / FPREM1 (ieee=true, nearest).
   * Sets the result, q (low quotient bits) and partial (C2).
   */
  rem(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number, ieee: boolean): void {
    this.q = 0;
    this.partial = false;
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (this._nan2(aSe, aHi, aLo, ca, bSe, bHi, bLo, cb)) return;
    if (ca === Cls.INF || cb === Cls.ZERO) {
      this.invalid();
      return;
    }
    if (this._denormStop(ca, cb)) return;
    if (ca === Cls.ZERO || cb === Cls.INF) {
      if (ca === Cls.ZERO) this._set(aSe, aHi, aLo);
      else {
        this._unpackA(aSe, aHi, aLo);
        this._packA(this._aS, 64);
      }
      return;
    }
    this._unpackA(aSe, aHi, aLo);
    this._unpackB(bSe, bHi, bLo);
    let s = this._aS;
    const n = this._aE - this._bE;
    const a0 = this._a0 >>> 0;
    const a1 = this._a1 >>> 0;
    const d0 = this._b0 >>> 0;
    const d1 = this._b1 >>> 0;
    if (n < 0) {
      if (ieee && n === -1 && (a0 > d0 || (a0 === d0 && a1 > d1))) {
        // |a| in (|b|/2, |b|): remainder a - b, computed at a's scale as 2*bm - am; quotient 1.
        let l = ((d1 * 2) % TWO32) - a1;
        let bor = 0;
        if (l < 0) {
          l += TWO32;
          bor = 1;
        }
        let h = ((d0 * 2 + (d1 >= 0x80000000 ? 1 : 0)) % TWO32) - a0 - bor;
        if (h < 0) h += TWO32;
        this._m0 = h | 0;
        this._m1 = l | 0;
        this._m2 = 0;
        this.q = 1;
        const e = this._aE - this._norm();
        this._packReg(s ^ 1, e, 64);
        return;
      }
      this._packA(s, 64);
      return;
    }
    let iters = n;
    let eScale = this._bE;
    if (n >= 64) {
      iters = 32 + (n % 32);
      eScale = this._aE - iters;
      this.partial = true;
    }
    let rt = 0;
    let r0 = a0;
    let r1 = a1;
    let q = 0;
    for (let i = 0; i <= iters; i++) {
      if (i > 0) {
        rt = r0 >>> 31;
        r0 = ((r0 << 1) | (r1 >>> 31)) >>> 0;
        r1 = (r1 << 1) >>> 0;
      }
      q = (q << 1) & 7;
      if (rt !== 0 || r0 > d0 || (r0 === d0 && r1 >= d1)) {
        let t1 = r1 - d1;
        let bor = 0;
        if (t1 < 0) {
          t1 += TWO32;
          bor = 1;
        }
        r0 = r0 - d0 - bor;
        if (r0 < 0) r0 += TWO32;
        r1 = t1;
        rt = 0;
        q |= 1;
      }
    }
    if (ieee && !this.partial) {
      // Compare 2r with d.
      const h = r0 >>> 31;
      const t0 = ((r0 << 1) | (r1 >>> 31)) >>> 0;
      const t1 = (r1 << 1) >>> 0;
      const c = h !== 0 || t0 > d0 || (t0 === d0 && t1 > d1) ? 1 : t0 === d0 && t1 === d1 ? 0 : -1;
      if (c > 0 || (c === 0 && (q & 1) !== 0)) {
        let u1 = d1 - r1;
        let bor = 0;
        if (u1 < 0) {
          u1 += TWO32;
          bor = 1;
        }
        r0 = d0 - r0 - bor;
        r1 = u1;
        q = (q + 1) & 7;
        s ^= 1;
      }
    }
    this.q = this.partial ? 0 : q;
    if ((r0 | r1) === 0) {
      this._zero(this._aS);
      return;
    }
    this._m0 = r0 | 0;
    this._m1 = r1 | 0;
    this._m2 = 0;
    const e = eScale - this._norm();
    this._packReg(s, e, 64);
  }

  /** FSCALE: a * 2^trunc(b). */
  scale(aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number): void {
    const ca = classify(aSe, aHi, aLo);
    const cb = classify(bSe, bHi, bLo);
    if (this._nan2(aSe, aHi, aLo, ca, bSe, bHi, bLo, cb)) return;
    if (this._denormStop(ca, cb)) return;
    const bS = (bSe >>> 15) & 1;
    if (cb === Cls.INF) {
      if (bS === 0) {
        if (ca === Cls.ZERO) this.invalid();
        else this._inf((aSe >>> 15) & 1);
      } else {
        if (ca === Cls.INF) this.invalid();
        else this._zero((aSe >>> 15) & 1);
      }
      return;
    }
    if (ca === Cls.ZERO || ca === Cls.INF) {
      this._set(aSe, aHi, aLo);
      return;
    }
    let n = 0;
    if (cb !== Cls.ZERO) {
      this._unpackB(bSe, bHi, bLo);
      if (this._bE >= 20) n = 1 << 20;
      else if (this._bE >= 0) n = this._b0 >>> (31 - this._bE);
      if (bS !== 0) n = -n;
    }
    this._unpackA(aSe, aHi, aLo);
    this._packA(this._aS, 64);
    if (n !== 0) {
      this.flags &= ~(Ex.PE | Ex.UE);
      this.up = 0;
      this._m0 = this._a0;
      this._m1 = this._a1;
      this._m2 = 0;
      this._packReg(this._aS, this._aE + n, 64);
    }
  }

  /** Unbiased exponent and normalised significand of a finite non-zero value (for FXTRACT etc.). */
  unpack(se: number, hi: number, lo: number): number {
    this._unpackA(se, hi, lo);
    this.iHi = this._a0;
    this.iLo = this._a1;
    return this._aE;
  }

  /** The value as the nearest JS number (for transcendental functions and debuggers). */
  toDouble(se: number, hi: number, lo: number): number {
    const c = classify(se, hi, lo);
    const neg = (se & 0x8000) !== 0;
    if (c === Cls.ZERO) return neg ? -0 : 0;
    if (c === Cls.INF) return neg ? -Infinity : Infinity;
    if (c >= Cls.QNAN) return NaN;
    this._unpackA(se, hi, lo);
    let v = (this._a0 >>> 0) * TWO32 + (this._a1 >>> 0);
    let e = this._aE - 63;
    // Scale in steps that stay within the double range.
    while (e > 1000) {
      v *= 2 ** 1000;
      e -= 1000;
    }
    while (e < -1000) {
      v *= 2 ** -1000;
      e += 1000;
    }
    v *= 2 ** e;
    return neg ? -v : v;
  }

  /**
   * A JS number times 2^scale into the result, rounded to p bits
   * (transcendental results). inexact: the true value is irrational, so PE is
   * raised even if the double happens to fit.
   */
  fromDouble(v: number, scale: number, p: number, inexact: boolean): void {
    if (v !== v) {
      this.invalid();
      return;
    }
    F64.setFloat64(0, v, true);
    const hi = F64.getUint32(4, true);
    const lo = F64.getUint32(0, true) | 0;
    const s = hi >>> 31;
    const exp = (hi >>> 20) & 0x7ff;
    if (exp === 0x7ff) {
      this._inf(s);
      return;
    }
    this._m0 = ((hi & 0xfffff) << 11) | (lo >>> 21);
    this._m1 = lo << 11;
    this._m2 = 0;
    if (exp === 0 && (this._m0 | this._m1) === 0) {
      this._zero(s);
      return;
    }
    let e: number;
    if (exp === 0) e = -1022 - this._norm();
    else {
      this._m0 |= 0x80000000;
      e = exp - 1023;
    }
    if (inexact) this.flags |= Ex.PE;
    this._packReg(s, e + scale, p);
  }
}

/** Scratch view for taking doubles apart (no allocation per call). */
const F64 = new DataView(new ArrayBuffer(8));

// x87 FPU (387/P6 programming model): register stack, control/status/tag
// words, every D8-DF instruction, FSTENV/FSAVE/FXSAVE images.
//
// Resources: Intel SDM Vol. 1 ch. 8 (x87 FPU), Vol. 2 instruction pages
// (FSTENV/FSAVE layouts, FXAM, FCOMI, FPREM...), Vol. 3 table 9-1 (power-up state).
// Arithmetic lives in fpu/ext80.ts (exact extended precision on int32 limbs);
// transcendentals in fpu/trans.ts. docs/fpu.md describes the design.

import { Cls, Cmp, Ex, Ext80, INDEF_HI, INDEF_SE, Rc, classify } from './fpu/ext80.js';
import { fpuTranscendental } from './fpu/trans.js';

import type { FpuBus } from './fpu-api.js';
/** What the FPU needs from the CPU: declared once, in fpu-api.ts. */
export type { FpuBus };

/** Serialisable FPU state. */
export interface FpuState {
  cw: number;
  /** Status word with TOP in bits 11-13. */
  sw: number;
  /** Bit i set: physical register i is empty. */
  empty: number;
  /** Physical registers R0-R7: sign/exponent, significand high and low 32 bits. */
  regSe: Uint16Array;
  regHi: Int32Array;
  regLo: Int32Array;
  fip: number;
  fcs: number;
  fdp: number;
  fds: number;
  fop: number;
}

/** Status word bits. */
const enum Sw { C0 = 0x0100, C1 = 0x0200, C2 = 0x0400, C3 = 0x4000, ES = 0x0080, B = 0x8000, TOP = 0x3800, SF = 0x0040 }
const CC = Sw.C0 | Sw.C1 | Sw.C2 | Sw.C3;
/** EFLAGS bits read by FCMOVcc. */
const enum Fl { CF = 0x01, PF = 0x04, ZF = 0x40 }

/** Control word after FNINIT, and after power-up/RESET (SDM Vol. 3 table 9-1). */
const CW_INIT = 0x037f;
const CW_RESET = 0x0040;
/** Control word bits that exist (masks, PC, RC, IC); bit 6 always reads 1. */
const CW_BITS = 0x1f3f;

/** Register-form sub-opcode helpers: x = (op & 7) << 3 | reg field. */
const X_D8 = 0;
const X_D9 = 8;
const X_DA = 16;
const X_DB = 24;
const X_DC = 32;
const X_DD = 40;
const X_DE = 48;
const X_DF = 56;

/** Validity of each (op, modrm) pair: bit 0 memory forms by reg field, table for register forms. */
const VALID_REG = buildValidReg();
const VALID_MEM = buildValidMem();

function buildValidReg(): Uint8Array {
  const t = new Uint8Array(8 * 64);
  for (let x = 0; x < 64; x++) for (let rm = 0; rm < 8; rm++) t[x * 8 + rm] = 1;
  const clear = (x: number, rms: number[]): void => {
    for (const rm of rms) t[x * 8 + rm] = 0;
  };
  const all = [0, 1, 2, 3, 4, 5, 6, 7];
  clear(X_D9 + 2, [1, 2, 3, 4, 5, 6, 7]); // D9 D1-D7
  clear(X_D9 + 4, [2, 3, 6, 7]); // D9 E2 E3 E6 E7
  clear(X_D9 + 5, [7]); // D9 EF
  clear(X_DA + 4, all); // DA E0-E7
  clear(X_DA + 5, [0, 2, 3, 4, 5, 6, 7]); // DA E8-EF except E9
  clear(X_DA + 6, all);
  clear(X_DA + 7, all);
  clear(X_DB + 4, [5, 6, 7]); // DB E5-E7
  clear(X_DB + 7, all); // DB F8-FF
  clear(X_DD + 6, all); // DD F0-FF
  clear(X_DD + 7, all);
  clear(X_DE + 3, [0, 2, 3, 4, 5, 6, 7]); // DE D8-DF except D9
  clear(X_DF + 4, [1, 2, 3, 4, 5, 6, 7]); // DF E1-E7
  clear(X_DF + 7, all); // DF F8-FF
  return t;
}

function buildValidMem(): Uint8Array {
  const t = new Uint8Array(64).fill(1);
  t[X_D9 + 1] = 0;
  t[X_DB + 1] = 2; // FISTTP: only with SSE3
  t[X_DB + 4] = 0;
  t[X_DB + 6] = 0;
  t[X_DD + 1] = 2;
  t[X_DD + 5] = 0;
  t[X_DF + 1] = 2;
  t[X_D9 + 1] = 0;
  return t;
}

/** Bytes of an FSTENV image by (o32). */
const ENV_BYTES_16 = 14;
const ENV_BYTES_32 = 28;

/** The memory forms that write their operand (x = (op & 7) << 3 | reg). */
const STORES = new Set([
  8 + 2, 8 + 3, 8 + 6, 8 + 7, // D9: FST/FSTP m32, FNSTENV, FNSTCW
  24 + 1, 24 + 2, 24 + 3, 24 + 7, // DB: FISTTP/FIST/FISTP m32, FSTP m80
  40 + 1, 40 + 2, 40 + 3, 40 + 6, 40 + 7, // DD: FISTTP/FST/FSTP m64, FNSAVE, FNSTSW
  56 + 1, 56 + 2, 56 + 3, 56 + 6, 56 + 7, // DF: FISTTP/FIST/FISTP m16, FBSTP m80, FISTP m64
]);

/** Size in bytes of the memory operand of x87 form x (environment and save images by operand size). */
function operandBytes(x: number, o32: boolean): number {
  const env = o32 ? 28 : 14;
  const reg = x & 7;
  switch (x >> 3) {
    case 0: // D8: m32real
    case 2: // DA: m32int
      return 4;
    case 4: // DC: m64real
      return 8;
    case 6: // DE: m16int
      return 2;
    case 1: // D9
      return reg === 4 || reg === 6 ? env : reg === 5 || reg === 7 ? 2 : 4;
    case 3: // DB
      return reg === 5 || reg === 7 ? 10 : 4;
    case 5: // DD
      return reg === 4 || reg === 6 ? env + 80 : reg === 7 ? 2 : 8;
    default: // DF
      return reg === 4 || reg === 6 ? 10 : reg === 5 || reg === 7 ? 8 : 2;
  }
}

/** The x87 floating-point unit. */
export class Fpu {
  /** CS selector and offset of the current instruction (set by the CPU before execute). */
  instrCs = 0;
  instrIp = 0;
  /** Segment selector and offset of the current memory operand. */
  dataSeg = 0;
  dataOff = 0;
  /** Accept FISTTP (DB/1, DD/1, DF/1): set when the CPU model has SSE3. */
  sse3 = false;

  private readonly _bus: FpuBus;
  private readonly _m = new Ext80();
  private _cw = CW_RESET;
  /** Status word without TOP. */
  private _sw = 0;
  private _top = 0;
  private _empty = 0;
  private readonly _se = new Uint16Array(8);
  private readonly _hi = new Int32Array(8);
  private readonly _lo = new Int32Array(8);
  private _fip = 0;
  private _fcs = 0;
  private _fdp = 0;
  private _fds = 0;
  private _fop = 0;
  /** Scratch for FRSTOR/FLDENV/FXRSTOR images (read completely before any state changes). */
  private readonly _buf = new Uint8Array(512);

  constructor(bus: FpuBus) {
    this._bus = bus;
    this.reset();
  }

  /** Power-up / RESET state (SDM Vol. 3 table 9-1): CW 0040h, SW 0, TW 5555h (all +0.0, valid). */
  reset(): void {
    this._cw = CW_RESET;
    this._sw = 0;
    this._top = 0;
    this._empty = 0;
    this._se.fill(0);
    this._hi.fill(0);
    this._lo.fill(0);
    this._fip = 0;
    this._fcs = 0;
    this._fdp = 0;
    this._fds = 0;
    this._fop = 0;
    this._syncControl();
  }

  /** FNINIT: CW 037Fh, SW 0, all registers empty, pointers cleared. */
  init(): void {
    this._cw = CW_INIT;
    this._sw = 0;
    this._top = 0;
    this._empty = 0xff;
    this._fip = 0;
    this._fcs = 0;
    this._fdp = 0;
    this._fds = 0;
    this._fop = 0;
    this._syncControl();
  }

  // ---- debugger / monitor view ----

  /** Control word. */
  get cw(): number {
    return this._cw;
  }
  /** Status word including TOP. */
  get errorPending(): boolean {
    return (this._sw & Sw.ES) !== 0;
  }

  get sw(): number {
    return this._sw | (this._top << 11);
  }
  /** Full 16-bit tag word (as FSTENV stores it). */
  get tw(): number {
    return this._tagWord();
  }
  /** ST(i) as the nearest JS number. */
  st(i: number): number {
    const p = (this._top + i) & 7;
    return this._m.toDouble(this._se[p], this._hi[p], this._lo[p]);
  }
  /** ST(i) raw: sign/exponent word. */
  stSignExp(i: number): number {
    return this._se[(this._top + i) & 7];
  }
  /** ST(i) raw: significand bits 63-32 (unsigned). */
  stMantHi(i: number): number {
    return this._hi[(this._top + i) & 7] >>> 0;
  }
  /** ST(i) raw: significand bits 31-0 (unsigned). */
  stMantLo(i: number): number {
    return this._lo[(this._top + i) & 7] >>> 0;
  }
  /** True when ST(i) is tagged empty. */
  stEmpty(i: number): boolean {
    return ((this._empty >> ((this._top + i) & 7)) & 1) !== 0;
  }
  /** Last instruction/data pointers and opcode (FIP, FCS, FDP, FDS, FOP). */
  get fip(): number {
    return this._fip;
  }
  get fcs(): number {
    return this._fcs;
  }
  get fdp(): number {
    return this._fdp;
  }
  get fds(): number {
    return this._fds;
  }
  get fop(): number {
    return this._fop;
  }

  /** Whether (op, modrm) is an instruction this FPU executes; the CPU raises #UD otherwise. */
  isValid(op: number, modrm: number): boolean {
    const x = ((op & 7) << 3) | ((modrm >> 3) & 7);
    if (modrm < 0xc0) {
      const v = VALID_MEM[x];
      return v === 1 || (v === 2 && this.sse3);
    }
    return VALID_REG[x * 8 + (modrm & 7)] !== 0;
  }

  // ---- state ----

  saveState(): FpuState {
    return {
      cw: this._cw,
      sw: this.sw,
      empty: this._empty,
      regSe: this._se.slice(),
      regHi: this._hi.slice(),
      regLo: this._lo.slice(),
      fip: this._fip,
      fcs: this._fcs,
      fdp: this._fdp,
      fds: this._fds,
      fop: this._fop,
    };
  }

  loadState(s: FpuState): void {
    this._cw = s.cw & 0xffff;
    this._sw = s.sw & ~Sw.TOP & 0xffff;
    this._top = (s.sw >> 11) & 7;
    this._empty = s.empty & 0xff;
    this._se.set(s.regSe);
    this._hi.set(s.regHi);
    this._lo.set(s.regLo);
    this._fip = s.fip;
    this._fcs = s.fcs;
    this._fdp = s.fdp;
    this._fds = s.fds;
    this._fop = s.fop;
    this._syncControl();
  }

  // ---- helpers ----

  /** Propagate CW fields to the arithmetic unit. */
  private _syncControl(): void {
    const m = this._m;
    m.masks = this._cw & 0x3f;
    m.rc = (this._cw >> 10) & 3;
    const pc = (this._cw >> 8) & 3;
    m.pc = pc === 0 ? 24 : pc === 2 ? 53 : 64;
  }

  /** Recompute ES and B from the exception flags and masks (after CW or SW loads). */
  private _syncEs(): void {
    if ((this._sw & ~this._cw & 0x3f) !== 0) this._sw |= Sw.ES | Sw.B;
    else this._sw &= ~(Sw.ES | Sw.B);
  }

  private _tagOf(p: number): number {
    if (((this._empty >> p) & 1) !== 0) return 3;
    const se = this._se[p];
    const exp = se & 0x7fff;
    if (exp === 0x7fff) return 2;
    if (exp === 0) return (this._hi[p] | this._lo[p]) === 0 ? 1 : 2;
    return this._hi[p] < 0 ? 0 : 2;
  }

  private _tagWord(): number {
    let tw = 0;
    for (let p = 0; p < 8; p++) tw |= this._tagOf(p) << (p * 2);
    return tw;
  }

  /** Merge exception flags into SW; returns true if the result may be delivered (no unmasked IE/DE/ZE). */
  private _commit(fl: number): boolean {
    if (fl === 0) return true;
    this._sw |= fl & 0x7f;
    const unm = fl & ~this._cw & 0x3f;
    if (unm !== 0) this._sw |= Sw.ES | Sw.B;
    return (unm & (Ex.IE | Ex.DE | Ex.ZE)) === 0;
  }

  private _setC1(v: number): void {
    if (v !== 0) this._sw |= Sw.C1;
    else this._sw &= ~Sw.C1;
  }

  private _isEmpty(i: number): boolean {
    return ((this._empty >> ((this._top + i) & 7)) & 1) !== 0;
  }

  private _setSt(i: number, se: number, hi: number, lo: number): void {
    const p = (this._top + i) & 7;
    this._se[p] = se;
    this._hi[p] = hi;
    this._lo[p] = lo;
    this._empty &= ~(1 << p);
  }

  private _setStResult(i: number): void {
    const m = this._m;
    this._setSt(i, m.rSe, m.rHi, m.rLo);
  }

  private _push(se: number, hi: number, lo: number): void {
    this._top = (this._top - 1) & 7;
    this._setSt(0, se, hi, lo);
  }

  private _pop(): void {
    this._empty |= 1 << this._top;
    this._top = (this._top + 1) & 7;
  }

  /** Stack underflow: IE+SF, C1=0. Returns true when masked (deliver the indefinite). */
  private _underflow(): boolean {
    this._sw &= ~Sw.C1;
    return this._commit(Ex.IE | Ex.SF);
  }

  /** Stack overflow on a push: IE+SF, C1=1. Masked response pushes the indefinite. Returns true when masked. */
  private _overflow(): boolean {
    this._sw |= Sw.C1;
    if (this._commit(Ex.IE | Ex.SF)) {
      this._push(INDEF_SE, INDEF_HI, 0);
      return true;
    }
    return false;
  }

  /** True if a push may go ahead (ST(7) empty); otherwise handles the overflow. */
  private _canPush(): boolean {
    if (this._isEmpty(7)) return true;
    this._overflow();
    return false;
  }

  private _r(i: number): number {
    return (this._top + i) & 7;
  }

  /** Push the arithmetic unit's result with its flags (FLD m32/m64, FILD, FBLD). An unmasked DE still loads. */
  private _pushResult(): void {
    const m = this._m;
    this._commit(m.flags);
    if ((m.flags & ~this._cw & Ex.IE) === 0) {
      this._setC1(m.up);
      this._push(m.rSe, m.rHi, m.rLo);
    }
  }

  // ---- execution ----

  /** FWAIT: report a pending unmasked exception. */
  fwait(): void {
    if ((this._sw & Sw.ES) !== 0) this._bus.reportError();
  }

  /**
   * Execute one x87 instruction. op = 0xD8..0xDF; modrm; ea = linear address of
   * the memory operand (modrm < 0xC0); o32 selects 32-bit environment layouts;
   * realMode selects the real/V86 environment layouts.
   */
  execute(op: number, modrm: number, ea: number, o32: boolean, realMode: boolean): void {
    const x = ((op & 7) << 3) | ((modrm >> 3) & 7);
    this._m.begin();
    if (modrm < 0xc0) {
      const len = operandBytes(x, o32);
      const write = STORES.has(x);
      // Non-waiting control instructions: FNSTENV, FNSTCW, FNSAVE, FNSTSW m16.
      if (x === X_D9 + 6 || x === X_D9 + 7 || x === X_DD + 6 || x === X_DD + 7) {
        this._bus.operand(len, write);
        this._control(x, ea, o32, realMode);
        return;
      }
      if ((this._sw & Sw.ES) !== 0) this._bus.reportError();
      this._bus.operand(len, write);
      if (x === X_D9 + 4 || x === X_D9 + 5 || x === X_DD + 4) {
        this._control(x, ea, o32, realMode);
        return;
      }
      this._fip = this.instrIp;
      this._fcs = this.instrCs;
      this._fop = ((op & 7) << 8) | modrm;
      this._fdp = this.dataOff;
      this._fds = this.dataSeg;
      this._execMem(x, ea);
      return;
    }
    const rm = modrm & 7;
    if (x === X_DB + 4 || (x === X_DF + 4 && rm === 0)) {
      // FENI/FDISI/FNCLEX/FNINIT/FSETPM and FNSTSW AX: non-waiting, no pointer update.
      if (x === X_DF + 4) this._bus.setAx(this.sw);
      else if (rm === 2) {
        this._sw &= ~(0x7f | Sw.ES | Sw.B);
      } else if (rm === 3) this.init();
      return;
    }
    if ((this._sw & Sw.ES) !== 0) this._bus.reportError();
    this._fip = this.instrIp;
    this._fcs = this.instrCs;
    this._fop = ((op & 7) << 8) | modrm;
    this._execReg(x, rm);
  }

  /** Read the memory operand of an arithmetic/compare form into the arithmetic unit's result. */
  private _loadOperand(x: number, ea: number): void {
    const m = this._m;
    const bus = this._bus;
    switch (x >> 3) {
      case 0: // D8: m32real
        m.fromF32(bus.read32(ea), false);
        break;
      case 2: // DA: m32int
        {
          const v = bus.read32(ea) | 0;
          m.fromInt(v >> 31, v);
        }
        break;
      case 4: // DC: m64real
        {
          const lo = bus.read32(ea);
          const hi = bus.read32(ea + 4);
          m.fromF64(hi, lo, false);
        }
        break;
      default: // DE: m16int
        {
          const v = (bus.read16(ea) << 16) >> 16;
          m.fromInt(v >> 31, v);
        }
        break;
    }
  }

  private _execMem(x: number, ea: number): void {
    const m = this._m;
    const bus = this._bus;
    const row = x >> 3;
    const reg = x & 7;
    if ((row & 1) === 0) {
      // D8/DA/DC/DE: arithmetic with a memory operand.
      this._loadOperand(x, ea);
      const bSe = m.rSe;
      const bHi = m.rHi;
      const bLo = m.rLo;
      if (this._isEmpty(0)) {
        const masked = this._underflow();
        if (reg === 2 || reg === 3) {
          this._sw |= Sw.C0 | Sw.C2 | Sw.C3;
          if (masked && reg === 3) this._pop();
        } else if (masked) this._setSt(0, INDEF_SE, INDEF_HI, 0);
        return;
      }
      const p = this._r(0);
      if (reg === 2 || reg === 3) {
        this._compareCC(p, bSe, bHi, bLo, false, reg === 3 ? 1 : 0);
        return;
      }
      this._arith(reg, this._se[p], this._hi[p], this._lo[p], bSe, bHi, bLo);
      if (this._commit(m.flags)) {
        this._setC1(m.up);
        this._setStResult(0);
      }
      return;
    }
    switch (x) {
      case X_D9 + 0: // FLD m32
        m.fromF32(bus.read32(ea), true);
        if (this._canPush()) this._pushResult();
        return;
      case X_DD + 0: { // FLD m64
        const lo = bus.read32(ea);
        const hi = bus.read32(ea + 4);
        m.fromF64(hi, lo, true);
        if (this._canPush()) this._pushResult();
        return;
      }
      case X_DB + 5: { // FLD m80
        const lo = bus.read32(ea);
        const hi = bus.read32(ea + 4);
        const se = bus.read16(ea + 8);
        if (this._canPush()) {
          this._sw &= ~Sw.C1;
          this._push(se, hi | 0, lo | 0);
        }
        return;
      }
      case X_DB + 0: { // FILD m32
        const v = bus.read32(ea) | 0;
        m.fromInt(v >> 31, v);
        if (this._canPush()) this._pushResult();
        return;
      }
      case X_DF + 0: { // FILD m16
        const v = (bus.read16(ea) << 16) >> 16;
        m.fromInt(v >> 31, v);
        if (this._canPush()) this._pushResult();
        return;
      }
      case X_DF + 5: { // FILD m64
        const lo = bus.read32(ea);
        const hi = bus.read32(ea + 4);
        m.fromInt(hi, lo);
        if (this._canPush()) this._pushResult();
        return;
      }
      case X_DF + 4: // FBLD
        this._fbld(ea);
        return;
      case X_D9 + 2: // FST m32
      case X_D9 + 3: // FSTP m32
      case X_DD + 2: // FST m64
      case X_DD + 3: // FSTP m64
      case X_DB + 7: // FSTP m80
        this._fstMem(x, ea);
        return;
      case X_DB + 2: // FIST m32
      case X_DB + 3: // FISTP m32
      case X_DB + 1: // FISTTP m32
        this._fist(ea, 32, reg === 3 || reg === 1, reg === 1);
        return;
      case X_DF + 2: // FIST m16
      case X_DF + 3: // FISTP m16
      case X_DF + 1: // FISTTP m16
        this._fist(ea, 16, reg === 3 || reg === 1, reg === 1);
        return;
      case X_DF + 7: // FISTP m64
      case X_DD + 1: // FISTTP m64
        this._fist(ea, 64, true, reg === 1);
        return;
      case X_DF + 6: // FBSTP
        this._fbstp(ea);
        return;
      default:
        return; // invalid encodings: the CPU raised #UD via isValid()
    }
  }

  /** ST0-with-operand arithmetic by reg field: 0 add, 1 mul, 4 a-b, 5 b-a, 6 a/b, 7 b/a. */
  private _arith(reg: number, aSe: number, aHi: number, aLo: number, bSe: number, bHi: number, bLo: number): void {
    const m = this._m;
    switch (reg) {
      case 0:
        m.add(aSe, aHi, aLo, bSe, bHi, bLo, 0);
        break;
      case 1:
        m.mul(aSe, aHi, aLo, bSe, bHi, bLo);
        break;
      case 4:
        m.add(aSe, aHi, aLo, bSe, bHi, bLo, 1);
        break;
      case 5:
        m.add(bSe, bHi, bLo, aSe, aHi, aLo, 1);
        break;
      case 6:
        m.div(aSe, aHi, aLo, bSe, bHi, bLo);
        break;
      default:
        m.div(bSe, bHi, bLo, aSe, aHi, aLo);
        break;
    }
  }

  /**
   * Compare physical register p with b and set C0/C2/C3 (FCOM/FUCOM family),
   * then pop `pops` times if the instruction completes.
   */
  private _compareCC(p: number, bSe: number, bHi: number, bLo: number, quiet: boolean, pops: number): void {
    const m = this._m;
    const r = m.compare(this._se[p], this._hi[p], this._lo[p], bSe, bHi, bLo, quiet);
    this._sw &= ~Sw.C1;
    // Hardware sets the condition codes even when IE/DE are unmasked; only the pop is withheld.
    const ok = this._commit(m.flags);
    this._sw &= ~(Sw.C0 | Sw.C2 | Sw.C3);
    if (r === Cmp.LT) this._sw |= Sw.C0;
    else if (r === Cmp.EQ) this._sw |= Sw.C3;
    else if (r === Cmp.UN) this._sw |= Sw.C0 | Sw.C2 | Sw.C3;
    if (ok) for (let k = 0; k < pops; k++) this._pop();
  }

  /** FST/FSTP to m32/m64/m80. */
  private _fstMem(x: number, ea: number): void {
    const m = this._m;
    const bus = this._bus;
    const pop = x !== X_D9 + 2 && x !== X_DD + 2;
    if (this._isEmpty(0)) {
      this._sw &= ~Sw.C1;
      if ((this._cw & Ex.IE) !== 0) {
        // Masked underflow: the indefinite is stored.
        if (x === X_D9 + 2 || x === X_D9 + 3) bus.write32(ea, 0xffc00000 | 0);
        else if (x === X_DB + 7) {
          bus.write32(ea, 0);
          bus.write32(ea + 4, INDEF_HI);
          bus.write16(ea + 8, INDEF_SE);
        } else {
          bus.write32(ea, 0);
          bus.write32(ea + 4, 0xfff80000 | 0);
        }
        this._commit(Ex.IE | Ex.SF);
        if (pop) this._pop();
      } else this._commit(Ex.IE | Ex.SF);
      return;
    }
    const p = this._r(0);
    const se = this._se[p];
    const hi = this._hi[p];
    const lo = this._lo[p];
    if (x === X_DB + 7) {
      bus.write32(ea, lo);
      bus.write32(ea + 4, hi);
      bus.write16(ea + 8, se);
      this._sw &= ~Sw.C1;
      this._pop();
      return;
    }
    let ok: boolean;
    if (x === X_D9 + 2 || x === X_D9 + 3) {
      ok = m.toF32(se, hi, lo);
      if (ok) bus.write32(ea, m.iLo);
    } else {
      ok = m.toF64(se, hi, lo);
      if (ok) {
        bus.write32(ea, m.iLo);
        bus.write32(ea + 4, m.iHi);
      }
    }
    this._commit(m.flags);
    this._setC1(m.up);
    if (ok && pop) this._pop();
  }

  /** FIST/FISTP/FISTTP to m16/m32/m64. Invalid or empty source: the integer indefinite (IE masked) or nothing. */
  private _fist(ea: number, bits: number, pop: boolean, chop: boolean): void {
    const m = this._m;
    const bus = this._bus;
    let valid = false;
    if (this._isEmpty(0)) m.flags = Ex.IE | Ex.SF;
    else {
      const p = this._r(0);
      valid = m.toInt(this._se[p], this._hi[p], this._lo[p], bits, chop);
      if (!valid) m.flags &= ~(Ex.PE | Ex.DE);
    }
    if (!valid) m.up = 0;
    if (valid || (this._cw & Ex.IE) !== 0) {
      const hi = valid ? m.iHi : 0x80000000 | 0;
      const lo = valid ? m.iLo : 0;
      if (bits === 16) bus.write16(ea, valid ? lo & 0xffff : 0x8000);
      else if (bits === 32) bus.write32(ea, valid ? lo : 0x80000000 | 0);
      else {
        bus.write32(ea, lo);
        bus.write32(ea + 4, hi);
      }
    }
    const ok = this._commit(m.flags);
    this._setC1(m.up);
    if (ok && pop) this._pop();
  }

  /** FBLD: load an 18-digit packed BCD integer. */
  private _fbld(ea: number): void {
    const bus = this._bus;
    let h = 0;
    let l = 0;
    for (let i = 8; i >= 0; i--) {
      const b = bus.read8(ea + i);
      for (let k = 0; k < 2; k++) {
        const d = k === 0 ? b >> 4 : b & 15;
        // (h:l) = (h:l) * 10 + d
        const t = l * 10 + d;
        l = t >>> 0;
        h = (h * 10 + Math.floor(t / 4294967296)) >>> 0;
      }
    }
    const sign = bus.read8(ea + 9) & 0x80;
    const m = this._m;
    m.fromInt(h, l);
    if (sign !== 0) m.rSe |= 0x8000;
    if (this._canPush()) this._pushResult();
  }

  /** FBSTP: store ST0 as packed BCD (rounded under RC) and pop. */
  private _fbstp(ea: number): void {
    const m = this._m;
    const bus = this._bus;
    let valid = false;
    let h = 0;
    let l = 0;
    let sign = 0;
    if (this._isEmpty(0)) m.flags = Ex.IE | Ex.SF;
    else {
      const p = this._r(0);
      sign = (this._se[p] >> 15) & 1;
      if (m.toInt(this._se[p], this._hi[p], this._lo[p], 64, false)) {
        h = m.iHi >>> 0;
        l = m.iLo >>> 0;
        if ((m.iHi | 0) < 0) {
          l = (-l) >>> 0;
          h = (~h + (l === 0 ? 1 : 0)) >>> 0;
        }
        // |v| must be below 10^18 = 0DE0B6B3_A7640000h.
        valid = h < 0x0de0b6b3 || (h === 0x0de0b6b3 && l < 0xa7640000);
      }
      if (!valid) m.flags = (m.flags & ~(Ex.PE | Ex.DE)) | Ex.IE;
    }
    if (valid) {
      for (let i = 0; i < 9; i++) {
        let byte = 0;
        for (let k = 0; k < 2; k++) {
          // (h:l) /= 10; the remainder is the next digit.
          const qh = Math.floor(h / 10);
          const t = (h - qh * 10) * 4294967296 + l;
          const ql = Math.floor(t / 10);
          byte |= (t - ql * 10) << (k * 4);
          h = qh;
          l = ql;
        }
        bus.write8(ea + i, byte);
      }
      bus.write8(ea + 9, sign << 7);
    } else {
      m.up = 0;
      if ((this._cw & Ex.IE) !== 0) {
        // Packed BCD indefinite: FFFF C000 0000 0000 0000h.
        bus.write32(ea, 0);
        bus.write32(ea + 4, 0xc0000000 | 0);
        bus.write16(ea + 8, 0xffff);
      }
    }
    const ok = this._commit(m.flags);
    this._setC1(m.up);
    if (ok) this._pop();
  }

  // ---- control instructions ----

  private _control(x: number, ea: number, o32: boolean, realMode: boolean): void {
    const bus = this._bus;
    switch (x) {
      case X_D9 + 7: // FNSTCW
        bus.write16(ea, this._cw);
        return;
      case X_DD + 7: // FNSTSW m16
        bus.write16(ea, this.sw);
        return;
      case X_D9 + 5: // FLDCW
        this._cw = (bus.read16(ea) & CW_BITS) | 0x40;
        this._syncControl();
        this._syncEs();
        return;
      case X_D9 + 6: // FNSTENV
        this._storeEnv(ea, o32, realMode);
        this._cw |= 0x3f;
        this._syncControl();
        this._syncEs();
        return;
      case X_D9 + 4: // FLDENV
        this._readBytes(ea, o32 ? ENV_BYTES_32 : ENV_BYTES_16);
        this._loadEnv(o32, realMode);
        return;
      case X_DD + 6: { // FNSAVE
        const n = this._storeEnv(ea, o32, realMode);
        for (let i = 0; i < 8; i++) this._storeReg80(ea + n + i * 10, this._r(i));
        this.init();
        return;
      }
      case X_DD + 4: { // FRSTOR
        const n = o32 ? ENV_BYTES_32 : ENV_BYTES_16;
        this._readBytes(ea, n + 80);
        this._loadEnv(o32, realMode);
        const b = this._buf;
        for (let i = 0; i < 8; i++) {
          const o = n + i * 10;
          const p = this._r(i);
          this._lo[p] = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
          this._hi[p] = b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24);
          this._se[p] = b[o + 8] | (b[o + 9] << 8);
        }
        return;
      }
      default:
        return;
    }
  }

  private _storeReg80(ea: number, p: number): void {
    const bus = this._bus;
    bus.write32(ea, this._lo[p]);
    bus.write32(ea + 4, this._hi[p]);
    bus.write16(ea + 8, this._se[p]);
  }

  private _readBytes(ea: number, n: number): void {
    const bus = this._bus;
    const b = this._buf;
    for (let i = 0; i < n; i++) b[i] = bus.read8(ea + i);
  }

  /**
   * Store the 14/28-byte environment (SDM Vol. 1 figures 8-9 to 8-12). Reserved
   * upper halves of the 32-bit layouts are written as zero (as QEMU does).
   * Real/V86 layouts hold 20-bit linear pointers (selector * 16 + offset).
   */
  private _storeEnv(ea: number, o32: boolean, realMode: boolean): number {
    const bus = this._bus;
    const cw = this._cw;
    const sw = this.sw;
    const tw = this._tagWord();
    const fop = this._fop & 0x7ff;
    if (realMode) {
      const ip = ((this._fcs << 4) + this._fip) >>> 0;
      const dp = ((this._fds << 4) + this._fdp) >>> 0;
      if (o32) {
        bus.write32(ea, cw);
        bus.write32(ea + 4, sw);
        bus.write32(ea + 8, tw);
        bus.write32(ea + 12, ip & 0xffff);
        bus.write32(ea + 16, ((ip >>> 16) << 12) | fop);
        bus.write32(ea + 20, dp & 0xffff);
        bus.write32(ea + 24, (dp >>> 16) << 12);
        return ENV_BYTES_32;
      }
      bus.write16(ea, cw);
      bus.write16(ea + 2, sw);
      bus.write16(ea + 4, tw);
      bus.write16(ea + 6, ip & 0xffff);
      bus.write16(ea + 8, (((ip >>> 16) & 0xf) << 12) | fop);
      bus.write16(ea + 10, dp & 0xffff);
      bus.write16(ea + 12, ((dp >>> 16) & 0xf) << 12);
      return ENV_BYTES_16;
    }
    if (o32) {
      bus.write32(ea, cw);
      bus.write32(ea + 4, sw);
      bus.write32(ea + 8, tw);
      bus.write32(ea + 12, this._fip);
      bus.write32(ea + 16, (this._fcs & 0xffff) | (fop << 16));
      bus.write32(ea + 20, this._fdp);
      bus.write32(ea + 24, this._fds & 0xffff);
      return ENV_BYTES_32;
    }
    bus.write16(ea, cw);
    bus.write16(ea + 2, sw);
    bus.write16(ea + 4, tw);
    bus.write16(ea + 6, this._fip & 0xffff);
    bus.write16(ea + 8, this._fcs);
    bus.write16(ea + 10, this._fdp & 0xffff);
    bus.write16(ea + 12, this._fds);
    return ENV_BYTES_16;
  }

  private _b16(o: number): number {
    const b = this._buf;
    return b[o] | (b[o + 1] << 8);
  }

  private _b32(o: number): number {
    const b = this._buf;
    return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
  }

  /** Apply an environment image already read into _buf. Tags: only "empty" (11b) is honoured. */
  private _loadEnv(o32: boolean, realMode: boolean): void {
    const w = o32 ? 4 : 2;
    const cw = this._b16(0);
    const sw = this._b16(w);
    const tw = this._b16(2 * w);
    if (realMode) {
      if (o32) {
        const d16 = this._b32(16);
        this._fip = (this._b16(12) | (((d16 >>> 12) & 0xffff) << 16)) >>> 0;
        this._fop = d16 & 0x7ff;
        this._fdp = (this._b16(20) | (((this._b32(24) >>> 12) & 0xffff) << 16)) >>> 0;
      } else {
        const d8 = this._b16(8);
        this._fip = this._b16(6) | ((d8 >>> 12) << 16);
        this._fop = d8 & 0x7ff;
        this._fdp = this._b16(10) | ((this._b16(12) >>> 12) << 16);
      }
      this._fcs = 0;
      this._fds = 0;
    } else if (o32) {
      this._fip = this._b32(12);
      const d16 = this._b32(16);
      this._fcs = d16 & 0xffff;
      this._fop = (d16 >>> 16) & 0x7ff;
      this._fdp = this._b32(20);
      this._fds = this._b16(24);
    } else {
      this._fip = this._b16(6);
      this._fcs = this._b16(8);
      this._fdp = this._b16(10);
      this._fds = this._b16(12);
    }
    this._cw = (cw & CW_BITS) | 0x40;
    this._sw = sw & ~Sw.TOP;
    this._top = (sw >> 11) & 7;
    let empty = 0;
    for (let p = 0; p < 8; p++) if (((tw >> (p * 2)) & 3) === 3) empty |= 1 << p;
    this._empty = empty;
    this._syncControl();
    this._syncEs();
  }

  /** FXSAVE: 512-byte image; x87 part filled, MXCSR/MXCSR_MASK and XMM area zero. */
  fxsave(ea: number): void {
    const bus = this._bus;
    let ftw = 0;
    for (let p = 0; p < 8; p++) if (((this._empty >> p) & 1) === 0) ftw |= 1 << p;
    bus.write32(ea, this._cw | (this.sw << 16));
    bus.write32(ea + 4, ftw | ((this._fop & 0x7ff) << 16));
    bus.write32(ea + 8, this._fip);
    bus.write32(ea + 12, this._fcs & 0xffff);
    bus.write32(ea + 16, this._fdp);
    bus.write32(ea + 20, this._fds & 0xffff);
    bus.write32(ea + 24, 0);
    bus.write32(ea + 28, 0);
    for (let i = 0; i < 8; i++) {
      const o = ea + 32 + i * 16;
      const p = this._r(i);
      bus.write32(o, this._lo[p]);
      bus.write32(o + 4, this._hi[p]);
      bus.write32(o + 8, this._se[p]);
      bus.write32(o + 12, 0);
    }
    for (let o = 160; o < 288; o += 4) bus.write32(ea + o, 0);
  }

  /** FXRSTOR: load the x87 part of a 512-byte image. */
  fxrstor(ea: number): void {
    this._readBytes(ea, 160);
    const b = this._buf;
    this._cw = (this._b16(0) & CW_BITS) | 0x40;
    const sw = this._b16(2);
    this._sw = sw & ~Sw.TOP;
    this._top = (sw >> 11) & 7;
    this._empty = ~b[4] & 0xff;
    this._fop = this._b16(6) & 0x7ff;
    this._fip = this._b32(8);
    this._fcs = this._b16(12);
    this._fdp = this._b32(16);
    this._fds = this._b16(20);
    for (let i = 0; i < 8; i++) {
      const o = 32 + i * 16;
      const p = this._r(i);
      this._lo[p] = this._b32(o) | 0;
      this._hi[p] = this._b32(o + 4) | 0;
      this._se[p] = this._b16(o + 8);
    }
    this._syncControl();
    this._syncEs();
  }

  // ---- register forms ----

  private _execReg(x: number, i: number): void {
    const m = this._m;
    const row = x >> 3;
    const reg = x & 7;
    // Arithmetic rows: D8 (ST0 op= ST(i)), DC (ST(i) op= ST0), DE (same, pop).
    if ((row === 0 || row === 4 || row === 6) && reg !== 2 && reg !== 3) {
      const dst = row === 0 ? 0 : i;
      if (this._isEmpty(0) || this._isEmpty(i)) {
        if (this._underflow()) {
          this._setSt(dst, INDEF_SE, INDEF_HI, 0);
          if (row === 6) this._pop();
        }
        return;
      }
      const a = this._r(0);
      const b = this._r(i);
      this._arith(reg, this._se[a], this._hi[a], this._lo[a], this._se[b], this._hi[b], this._lo[b]);
      if (this._commit(m.flags)) {
        this._setC1(m.up);
        this._setStResult(dst);
        if (row === 6) this._pop();
      }
      return;
    }
    switch (x) {
      case X_D8 + 2: // FCOM ST(i)
      case X_DC + 2: // FCOM2 (alias)
        this._fcomReg(i, false, 0);
        return;
      case X_D8 + 3: // FCOMP ST(i)
      case X_DC + 3: // FCOMP3
      case X_DE + 2: // FCOMP5
        this._fcomReg(i, false, 1);
        return;
      case X_DE + 3: // FCOMPP (DE D9)
        this._fcomReg(1, false, 2);
        return;
      case X_DD + 4: // FUCOM
        this._fcomReg(i, true, 0);
        return;
      case X_DD + 5: // FUCOMP
        this._fcomReg(i, true, 1);
        return;
      case X_DA + 5: // FUCOMPP (DA E9)
        this._fcomReg(1, true, 2);
        return;
      case X_DB + 5: // FUCOMI
        this._fcomi(i, true, false);
        return;
      case X_DB + 6: // FCOMI
        this._fcomi(i, false, false);
        return;
      case X_DF + 5: // FUCOMIP
        this._fcomi(i, true, true);
        return;
      case X_DF + 6: // FCOMIP
        this._fcomi(i, false, true);
        return;
      case X_D9 + 0: { // FLD ST(i)
        if (this._isEmpty(i)) {
          if (this._underflow()) {
            if (this._canPush()) this._push(INDEF_SE, INDEF_HI, 0);
          }
          return;
        }
        const p = this._r(i);
        if (this._canPush()) {
          this._sw &= ~Sw.C1;
          this._push(this._se[p], this._hi[p], this._lo[p]);
        }
        return;
      }
      case X_D9 + 1: // FXCH
      case X_DD + 1: // FXCH4
      case X_DF + 1: // FXCH7
        this._fxch(i);
        return;
      case X_D9 + 2: // FNOP (D9 D0)
        return;
      case X_DD + 2: // FST ST(i)
        this._fstReg(i, false);
        return;
      case X_D9 + 3: // FSTP1
        if (this._isEmpty(0)) {
          // Undocumented FSTP1 with an empty ST0 signals nothing: the empty tag is copied, then the pop.
          this._sw &= ~Sw.C1;
          this._empty |= 1 << this._r(i);
          this._pop();
          return;
        }
        this._fstReg(i, true);
        return;
      case X_DD + 3: // FSTP ST(i)
      case X_DF + 2: // FSTP8
      case X_DF + 3: // FSTP9
        this._fstReg(i, true);
        return;
      case X_DD + 0: // FFREE
        this._empty |= 1 << this._r(i);
        return;
      case X_DF + 0: // FFREEP
        this._empty |= 1 << this._r(i);
        this._pop();
        return;
      case X_DA + 0: // FCMOVB
      case X_DA + 1: // FCMOVE
      case X_DA + 2: // FCMOVBE
      case X_DA + 3: // FCMOVU
      case X_DB + 0: // FCMOVNB
      case X_DB + 1: // FCMOVNE
      case X_DB + 2: // FCMOVNBE
      case X_DB + 3: // FCMOVNU
        this._fcmov(reg, row === 3, i);
        return;
      case X_D9 + 4:
        this._groupE0(i);
        return;
      case X_D9 + 5:
        this._loadConst(i);
        return;
      case X_D9 + 6:
      case X_D9 + 7:
        this._groupF0(x === X_D9 + 6 ? i : i + 8);
        return;
      default:
        return;
    }
  }

  private _fcomReg(i: number, quiet: boolean, pops: number): void {
    if (this._isEmpty(0) || this._isEmpty(i)) {
      const masked = this._underflow();
      this._sw |= Sw.C0 | Sw.C2 | Sw.C3;
      if (masked) for (let k = 0; k < pops; k++) this._pop();
      return;
    }
    const b = this._r(i);
    this._compareCC(this._r(0), this._se[b], this._hi[b], this._lo[b], quiet, pops);
  }

  private _fcomi(i: number, quiet: boolean, pop: boolean): void {
    const m = this._m;
    const bus = this._bus;
    if (this._isEmpty(0) || this._isEmpty(i)) {
      const masked = this._underflow();
      bus.setEflagsZPC(true, true, true);
      if (masked && pop) this._pop();
      return;
    }
    const a = this._r(0);
    const b = this._r(i);
    const r = m.compare(this._se[a], this._hi[a], this._lo[a], this._se[b], this._hi[b], this._lo[b], quiet);
    this._sw &= ~Sw.C1;
    const ok = this._commit(m.flags);
    if (r === Cmp.GT) bus.setEflagsZPC(false, false, false);
    else if (r === Cmp.LT) bus.setEflagsZPC(false, false, true);
    else if (r === Cmp.EQ) bus.setEflagsZPC(true, false, false);
    else bus.setEflagsZPC(true, true, true);
    if (ok && pop) this._pop();
  }

  private _fxch(i: number): void {
    const e0 = this._isEmpty(0);
    const ei = this._isEmpty(i);
    if (e0 || ei) {
      if (!this._underflow()) return;
      if (e0) this._setSt(0, INDEF_SE, INDEF_HI, 0);
      if (ei) this._setSt(i, INDEF_SE, INDEF_HI, 0);
    } else this._sw &= ~Sw.C1;
    const a = this._r(0);
    const b = this._r(i);
    const se = this._se[a];
    const hi = this._hi[a];
    const lo = this._lo[a];
    this._se[a] = this._se[b];
    this._hi[a] = this._hi[b];
    this._lo[a] = this._lo[b];
    this._se[b] = se;
    this._hi[b] = hi;
    this._lo[b] = lo;
  }

  private _fstReg(i: number, pop: boolean): void {
    if (this._isEmpty(0)) {
      if (this._underflow()) {
        this._setSt(i, INDEF_SE, INDEF_HI, 0);
        if (pop) this._pop();
      }
      return;
    }
    const p = this._r(0);
    this._sw &= ~Sw.C1;
    this._setSt(i, this._se[p], this._hi[p], this._lo[p]);
    if (pop) this._pop();
  }

  private _fcmov(cond: number, negate: boolean, i: number): void {
    const f = this._bus.getEflags();
    let t: boolean;
    if (cond === 0) t = (f & Fl.CF) !== 0;
    else if (cond === 1) t = (f & Fl.ZF) !== 0;
    else if (cond === 2) t = (f & (Fl.CF | Fl.ZF)) !== 0;
    else t = (f & Fl.PF) !== 0;
    if (negate) t = !t;
    if (this._isEmpty(0) || this._isEmpty(i)) {
      if (this._underflow()) this._setSt(0, INDEF_SE, INDEF_HI, 0);
      return;
    }
    this._sw &= ~Sw.C1;
    if (t) {
      const p = this._r(i);
      this._setSt(0, this._se[p], this._hi[p], this._lo[p]);
    }
  }

  /** D9 E0-E7: FCHS, FABS, FTST, FXAM. */
  private _groupE0(i: number): void {
    const m = this._m;
    if (i === 5) {
      // FXAM: C3 C2 C0 = class, C1 = sign; works on empty registers.
      const p = this._r(0);
      const se = this._se[p];
      let sw = this._sw & ~CC;
      if ((se & 0x8000) !== 0) sw |= Sw.C1;
      if (this._isEmpty(0)) sw |= Sw.C3 | Sw.C0;
      else {
        const c = classify(se, this._hi[p], this._lo[p]);
        if (c === Cls.ZERO) sw |= Sw.C3;
        else if (c === Cls.DENORMAL) sw |= Sw.C3 | Sw.C2;
        else if (c === Cls.NORMAL) sw |= Sw.C2;
        else if (c === Cls.INF) sw |= Sw.C2 | Sw.C0;
        else if (c !== Cls.UNSUPPORTED) sw |= Sw.C0;
      }
      this._sw = sw;
      return;
    }
    if (this._isEmpty(0)) {
      const masked = this._underflow();
      if (i === 4) this._sw |= Sw.C0 | Sw.C2 | Sw.C3;
      else if (masked) this._setSt(0, INDEF_SE, INDEF_HI, 0);
      return;
    }
    const p = this._r(0);
    this._sw &= ~Sw.C1;
    if (i === 0) this._se[p] ^= 0x8000; // FCHS
    else if (i === 1) this._se[p] &= 0x7fff; // FABS
    else if (i === 4) this._compareCC(p, 0, 0, 0, false, 0); // FTST
  }

  /** D9 E8-EE: FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ. */
  private _loadConst(i: number): void {
    if (!this._canPush()) return;
    const rc = this._m.rc;
    // Constants are held to 66 bits; the last significand bit depends on rounding (SDM FLD1/FLDL2T...).
    const down = rc === Rc.DOWN || rc === Rc.ZERO ? 1 : 0;
    this._sw &= ~Sw.C1;
    switch (i) {
      case 0:
        this._push(0x3fff, 0x80000000 | 0, 0);
        break;
      case 1: // log2(10)
        this._push(0x4000, 0xd49a784b | 0, (0xcd1b8afe + (rc === Rc.UP ? 1 : 0)) | 0);
        break;
      case 2: // log2(e)
        this._push(0x3fff, 0xb8aa3b29 | 0, (0x5c17f0bc - down) | 0);
        break;
      case 3: // pi
        this._push(0x4000, 0xc90fdaa2 | 0, (0x2168c235 - down) | 0);
        break;
      case 4: // log10(2)
        this._push(0x3ffd, 0x9a209a84 | 0, (0xfbcff799 - down) | 0);
        break;
      case 5: // ln(2)
        this._push(0x3ffe, 0xb17217f7 | 0, (0xd1cf79ac - down) | 0);
        break;
      default:
        this._push(0, 0, 0);
        break;
    }
  }

  /** D9 F0-FF (j = 0..15): transcendental and miscellaneous. */
  private _groupF0(j: number): void {
    const m = this._m;
    switch (j) {
      case 6: // FDECSTP
        this._sw &= ~Sw.C1;
        this._top = (this._top - 1) & 7;
        return;
      case 7: // FINCSTP
        this._sw &= ~Sw.C1;
        this._top = (this._top + 1) & 7;
        return;
      case 10: // FSQRT
      case 12: { // FRNDINT
        if (this._isEmpty(0)) {
          if (this._underflow()) this._setSt(0, INDEF_SE, INDEF_HI, 0);
          return;
        }
        const p = this._r(0);
        if (j === 10) m.sqrt(this._se[p], this._hi[p], this._lo[p]);
        else m.roundInt(this._se[p], this._hi[p], this._lo[p]);
        if (this._commit(m.flags)) {
          this._setC1(m.up);
          this._setStResult(0);
        }
        return;
      }
      case 4: // FXTRACT
        this._fxtract();
        return;
      case 8: // FPREM
      case 5: // FPREM1
      case 13: { // FSCALE
        if (this._isEmpty(0) || this._isEmpty(1)) {
          if (this._underflow()) this._setSt(0, INDEF_SE, INDEF_HI, 0);
          return;
        }
        const a = this._r(0);
        const b = this._r(1);
        if (j === 13) m.scale(this._se[a], this._hi[a], this._lo[a], this._se[b], this._hi[b], this._lo[b]);
        else m.rem(this._se[a], this._hi[a], this._lo[a], this._se[b], this._hi[b], this._lo[b], j === 5);
        if (this._commit(m.flags)) {
          this._setStResult(0);
          if (j === 13) this._setC1(m.up);
          else {
            const q = m.q;
            let sw = this._sw & ~CC;
            if (m.partial) sw |= Sw.C2;
            if ((q & 4) !== 0) sw |= Sw.C0;
            if ((q & 2) !== 0) sw |= Sw.C3;
            if ((q & 1) !== 0) sw |= Sw.C1;
            this._sw = sw;
          }
        }
        return;
      }
      default:
        fpuTranscendental(this, j);
        return;
    }
  }

  private _fxtract(): void {
    const m = this._m;
    if (this._isEmpty(0)) {
      if (this._underflow()) {
        this._setSt(0, INDEF_SE, INDEF_HI, 0);
        if (this._canPush()) this._push(INDEF_SE, INDEF_HI, 0);
      }
      return;
    }
    if (!this._isEmpty(7)) {
      this._overflow();
      return;
    }
    const p = this._r(0);
    const se = this._se[p];
    const hi = this._hi[p];
    const lo = this._lo[p];
    const c = classify(se, hi, lo);
    let eSe: number;
    let eHi: number;
    let eLo: number;
    let sSe: number;
    let sHi: number;
    let sLo: number;
    if (c >= Cls.QNAN) {
      if (c === Cls.UNSUPPORTED) m.invalid();
      else {
        if (c === Cls.SNAN) m.flags |= Ex.IE;
        m.rSe = se;
        m.rHi = hi | 0x40000000;
        m.rLo = lo;
      }
      eSe = sSe = m.rSe;
      eHi = sHi = m.rHi;
      eLo = sLo = m.rLo;
    } else if (c === Cls.ZERO) {
      m.flags |= Ex.ZE;
      eSe = 0xffff;
      eHi = 0x80000000 | 0;
      eLo = 0;
      sSe = se;
      sHi = hi;
      sLo = lo;
    } else if (c === Cls.INF) {
      eSe = 0x7fff;
      eHi = 0x80000000 | 0;
      eLo = 0;
      sSe = se;
      sHi = hi;
      sLo = lo;
    } else {
      if (c === Cls.DENORMAL) m.flags |= Ex.DE;
      const e = m.unpack(se, hi, lo);
      sSe = (se & 0x8000) | 0x3fff;
      sHi = m.iHi;
      sLo = m.iLo;
      m.fromInt(e >> 31, e);
      eSe = m.rSe;
      eHi = m.rHi;
      eLo = m.rLo;
    }
    if (!this._commit(m.flags)) return;
    this._sw &= ~Sw.C1;
    this._setSt(0, eSe, eHi, eLo);
    this._push(sSe, sHi, sLo);
  }

  // ---- access for fpu/trans.ts (same module family) ----

  /** @internal */ get _math(): Ext80 {
    return this._m;
  }
  /** @internal */ _stEmpty(i: number): boolean {
    return this._isEmpty(i);
  }
  /** @internal */ _stSe(i: number): number {
    return this._se[this._r(i)];
  }
  /** @internal */ _stHi(i: number): number {
    return this._hi[this._r(i)];
  }
  /** @internal */ _stLo(i: number): number {
    return this._lo[this._r(i)];
  }
  /** @internal Stack underflow for a transcendental; returns true if masked. */
  _stUnderflow(): boolean {
    return this._underflow();
  }
  /** @internal Stack overflow check; true if the push may proceed. */
  _stCanPush(): boolean {
    return this._canPush();
  }
  /** @internal */ _stSet(i: number, se: number, hi: number, lo: number): void {
    this._setSt(i, se, hi, lo);
  }
  /** @internal */ _stPush(se: number, hi: number, lo: number): void {
    this._push(se, hi, lo);
  }
  /** @internal */ _stPop(): void {
    this._pop();
  }
  /** @internal Merge flags; true if the result may be delivered. */
  _stCommit(fl: number): boolean {
    return this._commit(fl);
  }
  /** @internal Set the condition bits given as a mask of Sw.C0..C3 (others cleared). */
  _stSetCC(c0: number, c1: number, c2: number, c3: number): void {
    let sw = this._sw & ~CC;
    if (c0) sw |= Sw.C0;
    if (c1) sw |= Sw.C1;
    if (c2) sw |= Sw.C2;
    if (c3) sw |= Sw.C3;
    this._sw = sw;
  }
}

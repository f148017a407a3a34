/**
 * Local APIC (xAPIC, memory-mapped): the one CPU's interrupt front end, as a
 * P6-class part presents it and as QEMU's `apic` device does (version 0x14,
 * six LVT entries: timer, thermal, performance counter, LINT0, LINT1, error).
 *
 * References: Intel SDM vol. 3A, chapter 10 (11 in later editions)
 * "Advanced Programmable Interrupt Controller": register map (table 10-1),
 * LVT layout (figure 10-8), timer (10.5.4), ESR (10.5.3), ICR (10.6.1),
 * priority, TPR/PPR/APR (10.8.3), EOI (10.8.5), SVR and software
 * enable/disable (10.9, 10.4.7). Behaviour guests rely on was compared with
 * QEMU's hw/intc/apic.c and apic_common.c.
 *
 * Modelling choices:
 * - One CPU: IPIs go only to this APIC (self, all-including-self, or a
 *   destination it matches); INIT, SIPI and SMI are accepted and ignored.
 * - The timer counts a 1 GHz bus clock divided by the divide configuration
 *   (QEMU's rate), on the board's virtual clock. The current count is computed
 *   from the time the initial count was written; only the next expiry is
 *   armed as a timer.
 * - The 8259's INTR reaches the CPU through LINT0 programmed as ExtINT
 *   (virtual wire mode). While the APIC is globally disabled (APIC_BASE bit
 *   11 clear) or software-disabled (SVR bit 8 clear), the 8259 drives the CPU
 *   directly, as on a PC without an APIC.
 * - At reset the BSP's LINT0 reads 0x700 (ExtINT, unmasked), as QEMU sets it
 *   for firmware that expects virtual wire mode; the other LVT entries are
 *   masked.
 * - Interrupt delivery is instantaneous, so delivery-status bits read 0.
 */
import type { Clock, Timer } from '../../time/clock.js';
import type { MmioHandlers } from '../../bus/memory.js';
import { bool, defineState, f64, loadChecked, saveFields, u8, u32, u32s } from '../../state/schema.js';

/** The default physical address of the APIC page (APIC_BASE MSR at reset). */
export const LAPIC_DEFAULT_BASE = 0xfee00000;
/** Size of the register window. */
export const LAPIC_MMIO_BYTES = 4096;
/** Version register: integrated APIC version 0x14 with six LVT entries (max LVT index 5 in bits 23:16). */
const LAPIC_VERSION = 0x14;
const LVT_COUNT = 6;
/** Timer input: a 1 GHz bus clock before the divider (QEMU's rate). */
const TIMER_NS_PER_TICK = 1;

/** Register offsets (byte offset / 16). */
export const enum LapicReg {
  ID = 0x02,
  VERSION = 0x03,
  TPR = 0x08,
  APR = 0x09,
  PPR = 0x0a,
  EOI = 0x0b,
  RRD = 0x0c,
  LDR = 0x0d,
  DFR = 0x0e,
  SVR = 0x0f,
  ISR0 = 0x10,
  TMR0 = 0x18,
  IRR0 = 0x20,
  ESR = 0x28,
  ICR_LO = 0x30,
  ICR_HI = 0x31,
  LVT0 = 0x32, // LVT timer; then thermal, perf, LINT0, LINT1, error
  TIMER_ICR = 0x38,
  TIMER_CCR = 0x39,
  TIMER_DCR = 0x3e,
}

/** LVT indices (register LVT0 + n). */
export const enum Lvt {
  TIMER = 0,
  THERMAL = 1,
  PERF = 2,
  LINT0 = 3,
  LINT1 = 4,
  ERROR = 5,
}

/** Bits of LVT entries, the ICR and I/O APIC redirection entries (shared layout). */
export const enum ApicBits {
  VECTOR = 0xff,
  DELIVERY_SHIFT = 8,
  DEST_LOGICAL = 0x800,
  DELIVERY_STATUS = 0x1000,
  POLARITY_LOW = 0x2000,
  REMOTE_IRR = 0x4000,
  LEVEL = 0x8000,
  MASKED = 0x10000,
  TIMER_PERIODIC = 0x20000,
}

/** Delivery modes (bits 10:8). */
export const enum DeliveryMode {
  FIXED = 0,
  LOWEST = 1,
  SMI = 2,
  NMI = 4,
  INIT = 5,
  STARTUP = 6,
  EXTINT = 7,
}

/** SVR bits. */
export const enum Svr {
  VECTOR = 0xff,
  ENABLE = 0x100,
  FOCUS_DISABLE = 0x200,
}

/** ESR bits (SDM 10.5.3). */
export const enum Esr {
  SEND_ILLEGAL_VECTOR = 0x20,
  RECEIVE_ILLEGAL_VECTOR = 0x40,
  ILLEGAL_REGISTER = 0x80,
}

/** Writable bits of each LVT entry (timer, thermal, perf, LINT0, LINT1, error). */
const LVT_WRITE_MASK = [0x300ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];
/** ICR low dword: vector, delivery mode, destination mode, level, trigger, shorthand. */
const ICR_LO_MASK = 0xccfff;
/** Vectors 0-15 are reserved for exceptions; the APIC refuses them (ESR illegal vector). */
const MIN_VECTOR = 16;
/** DFR model field: flat (all ones) or cluster (0). */
const DFR_FLAT = 0xf;

/** Saved state of the local APIC. */
export interface LapicState {
  [field: string]: number | boolean | Uint32Array;
  id: number;
  tpr: number;
  ldr: number;
  dfrModel: number;
  svr: number;
  isr: Uint32Array;
  tmr: Uint32Array;
  irr: Uint32Array;
  /** ESR as software reads it (errors latched by the last ESR write). */
  esr: number;
  /** Errors detected since the last ESR write. */
  esrPending: number;
  icrLo: number;
  icrHi: number;
  lvt: Uint32Array;
  timerInitial: number;
  timerDivide: number;
  /** Guest time the initial count was written. */
  timerLoadNs: number;
  /** Next timer expiry in guest ns, -1 when none. */
  timerDeadlineNs: number;
  /** APIC_BASE bit 11. */
  globalEnabled: boolean;
  /** The 8259's INT output as last seen on LINT0. */
  picIntr: boolean;
  lint1: boolean;
  intr: boolean;
}

/** What the board connects the local APIC to. */
export interface LapicDeps {
  clock: Clock;
  /** Drives the CPU's INTR (its one per-instruction check). Called on changes and after loadState. */
  onIntr: (level: boolean) => void;
  /** INTA to the 8259 pair (ExtINT through LINT0 or pass-through). */
  picAcknowledge: () => number;
  /** Raise an NMI at the CPU. */
  onNmi: () => void;
  /** EOI of a level-triggered vector: the I/O APIC clears its remote IRR. */
  onEoiBroadcast: (vector: number) => void;
}

function highestBit(words: Uint32Array): number {
  for (let i = 7; i >= 0; i--) {
    const w = words[i];
    if (w !== 0) return i * 32 + 31 - Math.clz32(w);
  }
  return -1;
}

function testBit(words: Uint32Array, n: number): boolean {
  return ((words[n >>> 5] >>> (n & 31)) & 1) !== 0;
}

function setBit(words: Uint32Array, n: number, on: boolean): void {
  if (on) words[n >>> 5] |= 1 << (n & 31);
  else words[n >>> 5] &= ~(1 << (n & 31));
}

/** The local APIC of the one CPU. `mmio` is mapped by the board at the APIC_BASE address. */
export class LocalApic {
  /**
   * Every register, the timer's count origin and deadline, and the input
   * lines as last seen; loading masks read-only bits off, re-arms the timer
   * and drives INTR.
   */
  static readonly stateSchema = defineState<LocalApic>(
    'lapic',
    1,
    {
      id: u8.at('_apicId'),
      tpr: u8.at('_tpr'),
      ldr: u8.at('_ldr'),
      dfrModel: u8.at('_dfrModel').range(0, 0xf),
      svr: u32.at('_svr'),
      isr: u32s(8).at('_isr'),
      tmr: u32s(8).at('_tmr'),
      irr: u32s(8).at('_irr'),
      esr: u8.at('_esr'),
      esrPending: u8.at('_esrPending'),
      icrLo: u32.at('_icrLo'),
      icrHi: u32.at('_icrHi'),
      lvt: u32s(LVT_COUNT).at('_lvt'),
      timerInitial: u32.at('_timerInitial'),
      timerDivide: u8.at('_timerDivide'),
      timerLoadNs: f64.at('_timerLoadNs'),
      timerDeadlineNs: f64.at('_timerDeadlineNs'),
      globalEnabled: bool.at('_globalEnabled'),
      picIntr: bool.at('_picIntr'),
      lint1: bool.at('_lint1'),
      intr: bool.at('_intr'),
    },
    {
      transient: ['mmio', '_clock', '_timer', '_onIntr', '_picAck', '_onNmi', '_onEoi'],
      postLoad: (a) => {
        a._svr &= Svr.VECTOR | Svr.ENABLE | Svr.FOCUS_DISABLE;
        a._icrLo &= ICR_LO_MASK;
        a._icrHi = (a._icrHi & 0xff000000) >>> 0;
        for (let n = 0; n < LVT_COUNT; n++) a._lvt[n] &= LVT_WRITE_MASK[n];
        a._timerDivide &= 0xb;
        a._setDeadline(a._timerDeadlineNs >= 0 ? a._timerDeadlineNs : -1);
        a._update();
        a._onIntr(a._intr);
      },
    },
  );
  readonly id: string;
  /** Register window handlers (addresses are absolute; the page offset selects the register). */
  readonly mmio: MmioHandlers;
  private readonly _clock: Clock;
  private readonly _timer: Timer;
  private readonly _onIntr: (level: boolean) => void;
  private readonly _picAck: () => number;
  private readonly _onNmi: () => void;
  private readonly _onEoi: (vector: number) => void;

  private _apicId = 0;
  private _tpr = 0;
  private _ldr = 0;
  private _dfrModel = DFR_FLAT;
  private _svr = Svr.VECTOR;
  private readonly _isr = new Uint32Array(8);
  private readonly _tmr = new Uint32Array(8);
  private readonly _irr = new Uint32Array(8);
  private _esr = 0;
  private _esrPending = 0;
  private _icrLo = 0;
  private _icrHi = 0;
  private readonly _lvt = new Uint32Array(LVT_COUNT);
  private _timerInitial = 0;
  private _timerDivide = 0;
  private _timerLoadNs = 0;
  private _timerDeadlineNs = -1;
  private _globalEnabled = true;
  private _picIntr = false;
  private _lint1 = false;
  private _intr = false;

  constructor(id: string, deps: LapicDeps) {
    this.id = id;
    this._clock = deps.clock;
    this._onIntr = deps.onIntr;
    this._picAck = deps.picAcknowledge;
    this._onNmi = deps.onNmi;
    this._onEoi = deps.onEoiBroadcast;
    this._timer = deps.clock.timer(`${id}-timer`, () => this._timerExpired());
    this.mmio = {
      read8: (a) => (this._read(a & ~3) >>> ((a & 3) * 8)) & 0xff,
      read16: (a) => (this._read(a & ~3) >>> ((a & 2) * 8)) & 0xffff,
      read32: (a) => this._read(a),
      // the APIC decodes 32-bit accesses only; narrower writes are dropped (as QEMU does)
      write8: () => {},
      write16: () => {},
      write32: (a, v) => this._write(a, v),
    };
    this.reset();
  }

  /** Power-on / RESET state (SDM 10.4.7.1), with the BSP's LINT0 in virtual wire mode as QEMU sets it. */
  reset(): void {
    this._apicId = 0;
    this._tpr = 0;
    this._ldr = 0;
    this._dfrModel = DFR_FLAT;
    this._svr = Svr.VECTOR;
    this._isr.fill(0);
    this._tmr.fill(0);
    this._irr.fill(0);
    this._esr = this._esrPending = 0;
    this._icrLo = this._icrHi = 0;
    this._lvt.fill(ApicBits.MASKED);
    this._lvt[Lvt.LINT0] = DeliveryMode.EXTINT << ApicBits.DELIVERY_SHIFT;
    this._timerInitial = 0;
    this._timerDivide = 0;
    this._timerLoadNs = this._clock.nowNs;
    this._setDeadline(-1);
    this._globalEnabled = true;
    this._update();
  }

  // ---- wiring ---------------------------------------------------------------------------

  /** The 8259 pair's INT output (LINT0 in a PC). */
  setPicIntr(level: boolean): void {
    if (level === this._picIntr) return;
    this._picIntr = level;
    const lvt = this._lvt[Lvt.LINT0];
    if (this._active() && (lvt & ApicBits.MASKED) === 0) {
      const mode = (lvt >>> ApicBits.DELIVERY_SHIFT) & 7;
      if (level) {
        if (mode !== DeliveryMode.EXTINT) this._localDeliver(Lvt.LINT0);
      } else if (mode === DeliveryMode.FIXED && (lvt & ApicBits.LEVEL) !== 0) {
        setBit(this._irr, lvt & ApicBits.VECTOR, false);
      }
    }
    this._update();
  }

  /** LINT1 (the PC's NMI sources); delivered on a rising edge. */
  setLint1(level: boolean): void {
    if (level && !this._lint1 && this._active()) this._localDeliver(Lvt.LINT1);
    this._lint1 = level;
  }

  /** APIC_BASE bit 11, from the CPU's MSR. Disabling also software-disables (SVR bit 8 clears, as QEMU does). */
  setGlobalEnable(on: boolean): void {
    this._globalEnabled = on;
    if (!on) this._softwareDisable();
    this._update();
  }

  /** Whether the APIC is globally enabled (APIC_BASE bit 11). */
  get globalEnabled(): boolean {
    return this._globalEnabled;
  }

  /**
   * An interrupt message from the I/O APIC (or an IPI): accepted if this APIC
   * matches the destination. Fixed and lowest-priority vectors go to the IRR
   * (and the TMR for level-triggered ones); NMI goes to the CPU.
   */
  deliver(vector: number, mode: number, level: boolean, logical: boolean, dest: number): void {
    if (!this._globalEnabled || !this._matches(dest & 0xff, logical)) return;
    this._accept(vector & 0xff, mode & 7, level);
  }

  /** INTA: the vector to deliver now, moved to in-service (or the 8259's vector, or the spurious vector). */
  acknowledge(): number {
    if (!this._active()) return this._picAck();
    if (this._picIntr && this._extIntOpen()) return this._picAck(); // ExtINT bypasses priority
    const v = this._deliverable();
    if (v < 0) return this._svr & Svr.VECTOR;
    setBit(this._irr, v, false);
    setBit(this._isr, v, true);
    this._update();
    return v;
  }

  /** Whether INTR to the CPU is asserted. */
  get intr(): boolean {
    return this._intr;
  }

  // ---- priorities ----------------------------------------------------------------------

  /** Globally and software-enabled: the APIC decides what the CPU sees. */
  private _active(): boolean {
    return this._globalEnabled && (this._svr & Svr.ENABLE) !== 0;
  }

  private _extIntOpen(): boolean {
    const lvt = this._lvt[Lvt.LINT0];
    return (lvt & ApicBits.MASKED) === 0 && ((lvt >>> ApicBits.DELIVERY_SHIFT) & 7) === DeliveryMode.EXTINT;
  }

  private _ppr(): number {
    const isrv = Math.max(highestBit(this._isr), 0);
    return this._tpr >>> 4 >= isrv >>> 4 ? this._tpr : isrv & 0xf0;
  }

  private _apr(): number {
    const isrv = Math.max(highestBit(this._isr), 0);
    const irrv = Math.max(highestBit(this._irr), 0);
    if (this._tpr >>> 4 >= irrv >>> 4 && this._tpr >>> 4 > isrv >>> 4) return this._tpr;
    return Math.max(this._tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
  }

  /** The highest IRR vector whose class is above the PPR's, or -1. */
  private _deliverable(): number {
    const irrv = highestBit(this._irr);
    if (irrv < 0 || (irrv & 0xf0) <= (this._ppr() & 0xf0)) return -1;
    return irrv;
  }

  private _update(): void {
    const level = this._active() ? this._deliverable() >= 0 || (this._picIntr && this._extIntOpen()) : this._picIntr;
    if (level !== this._intr) {
      this._intr = level;
      this._onIntr(level);
    }
  }

  private _accept(vector: number, mode: number, level: boolean): void {
    switch (mode) {
      case DeliveryMode.FIXED:
      case DeliveryMode.LOWEST:
        if (vector < MIN_VECTOR) {
          this._error(Esr.RECEIVE_ILLEGAL_VECTOR);
          return;
        }
        setBit(this._irr, vector, true);
        setBit(this._tmr, vector, level);
        this._update();
        break;
      case DeliveryMode.NMI:
        this._onNmi();
        break;
      default: // SMI (no SMM), INIT and STARTUP (one CPU, nothing to start), ExtINT (the I/O APIC resolves it)
        break;
    }
  }

  /** Deliver through an LVT entry (SDM 10.5.1). */
  private _localDeliver(n: number): void {
    const lvt = this._lvt[n];
    if (lvt & ApicBits.MASKED) return;
    const mode = n === Lvt.TIMER || n === Lvt.ERROR ? DeliveryMode.FIXED : (lvt >>> ApicBits.DELIVERY_SHIFT) & 7;
    if (mode === DeliveryMode.EXTINT) {
      this._update();
      return;
    }
    const level = (n === Lvt.LINT0 || n === Lvt.LINT1) && (lvt & ApicBits.LEVEL) !== 0;
    const vector = lvt & ApicBits.VECTOR;
    if (mode === DeliveryMode.FIXED && vector < MIN_VECTOR) {
      // an illegal vector in the error LVT itself is logged without another error interrupt
      this._esrPending |= Esr.RECEIVE_ILLEGAL_VECTOR;
      if (n !== Lvt.ERROR) this._localDeliver(Lvt.ERROR);
      return;
    }
    this._accept(vector, mode, level);
  }

  private _error(bits: number): void {
    this._esrPending |= bits;
    this._localDeliver(Lvt.ERROR);
  }

  private _matches(dest: number, logical: boolean): boolean {
    if (!logical) return dest === 0xff || dest === this._apicId;
    if (dest === 0xff) return true;
    if (this._dfrModel === DFR_FLAT) return (dest & this._ldr) !== 0;
    return (dest & 0xf0) === (this._ldr & 0xf0) && (dest & this._ldr & 0x0f) !== 0;
  }

  /** SVR enable cleared: every LVT entry is masked (SDM 10.4.7.2). */
  private _softwareDisable(): void {
    this._svr &= ~Svr.ENABLE;
    for (let n = 0; n < LVT_COUNT; n++) this._lvt[n] |= ApicBits.MASKED;
  }

  // ---- registers -------------------------------------------------------------------------

  private _read(addr: number): number {
    const off = addr & 0xfff;
    if (off & 0xc) return 0; // only the first dword of each 16-byte slot is a register
    const index = off >>> 4;
    switch (index) {
      case LapicReg.ID:
        return this._apicId << 24;
      case LapicReg.VERSION:
        return LAPIC_VERSION | ((LVT_COUNT - 1) << 16);
      case LapicReg.TPR:
        return this._tpr;
      case LapicReg.APR:
        return this._apr();
      case LapicReg.PPR:
        return this._ppr();
      case LapicReg.EOI:
        return 0;
      case LapicReg.LDR:
        return this._ldr << 24;
      case LapicReg.DFR:
        return ((this._dfrModel << 28) | 0x0fffffff) | 0;
      case LapicReg.SVR:
        return this._svr;
      case LapicReg.ESR:
        return this._esr;
      case LapicReg.ICR_LO:
        return this._icrLo;
      case LapicReg.ICR_HI:
        return this._icrHi;
      case LapicReg.TIMER_ICR:
        return this._timerInitial | 0;
      case LapicReg.TIMER_CCR:
        return this._currentCount() | 0;
      case LapicReg.TIMER_DCR:
        return this._timerDivide;
      default:
        break;
    }
    if (index >= LapicReg.ISR0 && index < LapicReg.ISR0 + 8) return this._isr[index - LapicReg.ISR0] | 0;
    if (index >= LapicReg.TMR0 && index < LapicReg.TMR0 + 8) return this._tmr[index - LapicReg.TMR0] | 0;
    if (index >= LapicReg.IRR0 && index < LapicReg.IRR0 + 8) return this._irr[index - LapicReg.IRR0] | 0;
    if (index >= LapicReg.LVT0 && index < LapicReg.LVT0 + LVT_COUNT) return this._lvt[index - LapicReg.LVT0] | 0;
    if (index !== LapicReg.RRD) this._error(Esr.ILLEGAL_REGISTER);
    return 0;
  }

  private _write(addr: number, value: number): void {
    const off = addr & 0xfff;
    if (off & 0xc) return;
    const v = value >>> 0;
    const index = off >>> 4;
    switch (index) {
      case LapicReg.ID:
        this._apicId = v >>> 24;
        return;
      case LapicReg.TPR:
        this._tpr = v & 0xff;
        this._update();
        return;
      case LapicReg.EOI:
        this._eoi();
        return;
      case LapicReg.LDR:
        this._ldr = v >>> 24;
        return;
      case LapicReg.DFR:
        this._dfrModel = v >>> 28;
        return;
      case LapicReg.SVR:
        this._svr = v & (Svr.VECTOR | Svr.ENABLE | Svr.FOCUS_DISABLE);
        if ((v & Svr.ENABLE) === 0) this._softwareDisable();
        this._update();
        return;
      case LapicReg.ESR:
        // a write latches the errors seen since the previous write (SDM 10.5.3)
        this._esr = this._esrPending;
        this._esrPending = 0;
        return;
      case LapicReg.ICR_LO:
        this._icrLo = v & ICR_LO_MASK;
        this._sendIpi();
        return;
      case LapicReg.ICR_HI:
        this._icrHi = v & 0xff000000;
        return;
      case LapicReg.TIMER_ICR:
        this._timerInitial = v;
        this._timerLoadNs = this._clock.nowNs;
        this._rearm(this._timerLoadNs);
        return;
      case LapicReg.TIMER_DCR:
        this._timerDivide = v & 0xb;
        return;
      case LapicReg.VERSION:
      case LapicReg.APR:
      case LapicReg.PPR:
      case LapicReg.RRD:
      case LapicReg.TIMER_CCR:
        return; // read-only
      default:
        break;
    }
    if (index >= LapicReg.LVT0 && index < LapicReg.LVT0 + LVT_COUNT) {
      const n = index - LapicReg.LVT0;
      let lvt = v & LVT_WRITE_MASK[n];
      if (!this._active()) lvt |= ApicBits.MASKED; // masks stay set while software-disabled
      this._lvt[n] = lvt;
      if (n === Lvt.TIMER) this._rearm(this._clock.nowNs);
      else if (n === Lvt.LINT0 && this._picIntr && this._active() && (lvt & ApicBits.MASKED) === 0) {
        if (((lvt >>> ApicBits.DELIVERY_SHIFT) & 7) !== DeliveryMode.EXTINT) this._localDeliver(Lvt.LINT0);
      }
      this._update();
      return;
    }
    if (index >= LapicReg.ISR0 && index < LapicReg.IRR0 + 8) return; // ISR, TMR, IRR are read-only
    this._error(Esr.ILLEGAL_REGISTER);
  }

  private _eoi(): void {
    const v = highestBit(this._isr);
    if (v < 0) return;
    setBit(this._isr, v, false);
    if (testBit(this._tmr, v)) this._onEoi(v);
    this._update();
  }

  /** ICR low written: send the IPI. Delivery is immediate, so the delivery-status bit stays 0. */
  private _sendIpi(): void {
    const lo = this._icrLo;
    const vector = lo & ApicBits.VECTOR;
    const mode = (lo >>> ApicBits.DELIVERY_SHIFT) & 7;
    const shorthand = (lo >>> 18) & 3;
    let toSelf: boolean;
    switch (shorthand) {
      case 1: // self
      case 2: // all including self
        toSelf = true;
        break;
      case 3: // all excluding self: there is nobody else
        toSelf = false;
        break;
      default:
        toSelf = this._matches(this._icrHi >>> 24, (lo & ApicBits.DEST_LOGICAL) !== 0);
        break;
    }
    if ((mode === DeliveryMode.FIXED || mode === DeliveryMode.LOWEST) && vector < MIN_VECTOR) {
      this._error(Esr.SEND_ILLEGAL_VECTOR | (toSelf ? Esr.RECEIVE_ILLEGAL_VECTOR : 0));
      return;
    }
    if (toSelf) this._accept(vector, mode, (lo & ApicBits.LEVEL) !== 0);
  }

  // ---- timer -----------------------------------------------------------------------------

  /** Nanoseconds per timer count at the current divide configuration. */
  private _tickNs(): number {
    const d = this._timerDivide;
    const code = (d & 3) | ((d >>> 1) & 4); // DCR bits 3, 1:0
    return TIMER_NS_PER_TICK * (1 << ((code + 1) & 7)); // 0b111 divides by 1
  }

  private _periodic(): boolean {
    return (this._lvt[Lvt.TIMER] & ApicBits.TIMER_PERIODIC) !== 0;
  }

  private _currentCount(): number {
    const initial = this._timerInitial;
    if (initial === 0) return 0;
    const ticks = Math.floor((this._clock.nowNs - this._timerLoadNs) / this._tickNs());
    if (this._periodic()) return initial - (ticks % initial);
    return ticks >= initial ? 0 : initial - ticks;
  }

  /** Arm the expiry after time `t`: the next multiple of the period (periodic), or the one count-out (one-shot). */
  private _rearm(t: number): void {
    const initial = this._timerInitial;
    if (initial === 0) {
      this._setDeadline(-1);
      return;
    }
    const tick = this._tickNs();
    const load = this._timerLoadNs;
    if (this._periodic()) {
      // the first whole period ending after t; guest time is a float and the load time may
      // be fractional, so the division can land one period short: never re-arm at or before t
      const period = initial * tick;
      const k = Math.floor((t - load) / period) + 1;
      const d = load + k * period;
      this._setDeadline(d > t ? d : load + (k + 1) * period);
    } else {
      const d = load + initial * tick;
      this._setDeadline(d > t ? d : -1);
    }
  }

  private _setDeadline(ns: number): void {
    this._timerDeadlineNs = ns;
    if (ns < 0) this._clock.disarm(this._timer);
    else this._clock.arm(this._timer, ns);
  }

  /** The count reached zero: interrupt; a one-shot timer is done, a periodic one reloads. */
  private _timerExpired(): void {
    const at = this._timerDeadlineNs;
    this._localDeliver(Lvt.TIMER);
    if (this._periodic()) this._rearm(at);
    else this._setDeadline(-1);
  }

  // ---- state -----------------------------------------------------------------------------

  saveState(): LapicState {
    return saveFields(LocalApic.stateSchema.fields, this) as unknown as LapicState;
  }

  /** Load a saved state (checked first: a bad one throws StateError and changes nothing). */
  loadState(s: LapicState): void {
    loadChecked(this.id, LocalApic.stateSchema, this, s);
  }
}

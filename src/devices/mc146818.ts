/**
 * MC146818 RTC: the PC real-time clock and its 128 bytes of CMOS RAM, reached
 * through an index port (0x70, bit 7 = NMI disable) and a data port (0x71).
 *
 * References: Motorola MC146818A datasheet (registers A-D, update cycle and UIP
 * timing, periodic rates, alarm "don't care" codes, BCD/binary and 12/24-hour
 * formats, SET bit); the IBM PC/AT CMOS map (century at 0x32, configuration bytes
 * from 0x0E). QEMU's hw/rtc/mc146818rtc.c was read for what firmware and Linux
 * expect (UIE cleared by SET, first update 500 ms after a divider reset).
 *
 * The time is kept as seconds since 1970 at a reference point of guest time,
 * so nothing runs per second: the clock registers are computed when read, and
 * interrupt flags are computed for the interval since they were last looked
 * at. Timers are armed only while an enabled interrupt could newly assert IRQ 8.
 */
import type { IrqLine } from '../bus/irq.js';
import type { IoPorts } from '../bus/ports.js';
import type { Clock, Timer } from '../time/clock.js';
import { assert } from '../base/assert.js';
import { bool, defineState, f64, loadChecked, saveFields, u8, u8s } from '../state/schema.js';

/** I/O ports. */
export const enum RtcPort {
  INDEX = 0x70,
  DATA = 0x71,
}

/** Bit 7 of a write to the index port masks NMI (a PC board function, kept here). */
export const NMI_DISABLE = 0x80;
const INDEX_MASK = 0x7f;
export const CMOS_SIZE = 128;

/** Register indexes. */
export const enum RtcReg {
  SECONDS = 0x00,
  SECONDS_ALARM = 0x01,
  MINUTES = 0x02,
  MINUTES_ALARM = 0x03,
  HOURS = 0x04,
  HOURS_ALARM = 0x05,
  DAY_OF_WEEK = 0x06,
  DAY_OF_MONTH = 0x07,
  MONTH = 0x08,
  YEAR = 0x09,
  A = 0x0a,
  B = 0x0b,
  C = 0x0c,
  D = 0x0d,
  /** IBM PC/AT CMOS map: century, in the same format as the clock. */
  CENTURY = 0x32,
}

/** Register A: update in progress, divider chain select, rate select. */
export const enum RegA {
  RS_MASK = 0x0f,
  DV_MASK = 0x70,
  DV_SHIFT = 4,
  UIP = 0x80,
}

/** Register A DV2-0 values: 0-2 run (010 is the 32.768 kHz time base), 6-7 hold the divider in reset. */
const enum Divider {
  LAST_RUNNING = 2,
  RESET_FIRST = 6,
}

/** Register B. */
export const enum RegB {
  DSE = 0x01,
  HOUR_24 = 0x02,
  DM_BINARY = 0x04,
  SQWE = 0x08,
  UIE = 0x10,
  AIE = 0x20,
  PIE = 0x40,
  SET = 0x80,
}

/** Register C: interrupt flags (read-only, cleared by reading). */
export const enum RegC {
  UF = 0x10,
  AF = 0x20,
  PF = 0x40,
  IRQF = 0x80,
}

/** Register D: valid RAM and time (the battery is always good here). */
export const enum RegD {
  VRT = 0x80,
}

/** Power-on values: 32.768 kHz time base with 1024 Hz periodic rate; 24-hour BCD. */
const REG_A_DEFAULT = 0x26;
const REG_B_DEFAULT = RegB.HOUR_24;
const FLAG_BITS = RegC.PF | RegC.AF | RegC.UF;
/** Interrupt-enable bits cleared by RESET. */
const RESET_CLEARS_B = RegB.PIE | RegB.AIE | RegB.UIE | RegB.SQWE;
/** Alarm bytes with both top bits set match any value. */
const ALARM_DONT_CARE = 0xc0;
const HOUR_PM = 0x80;
/** Each alarm byte and the clock byte it is compared with. */
const ALARM_PAIRS: readonly (readonly [number, number])[] = [
  [RtcReg.SECONDS_ALARM, RtcReg.SECONDS],
  [RtcReg.MINUTES_ALARM, RtcReg.MINUTES],
  [RtcReg.HOURS_ALARM, RtcReg.HOURS],
];

const NS_PER_S = 1e9;
/** One cycle of the 32.768 kHz time base (exact in binary floating point). */
const TIME_BASE_CYCLE_NS = NS_PER_S / 32768;
/** UIP rises 244 us (8 time-base cycles) before each update. */
const UIP_LEAD_NS = 8 * TIME_BASE_CYCLE_NS;
/** After the divider leaves reset, the first update comes 500 ms later. */
const DIVIDER_RESET_FIRST_UPDATE_NS = 500e6;
/** Timers fire this long after the exact event time, so float rounding never puts them before it. */
const EDGE_MARGIN_NS = 1;
const SECONDS_PER_DAY = 86400;
/** Unix day 0 (1970-01-01) was a Thursday; register 6 counts Sunday = 1. */
const EPOCH_DAY_OF_WEEK = 4;

/** Periodic interrupt period for rate select `rs` (datasheet table, 32.768 kHz time base), or 0 for none. */
export function periodicNs(rs: number): number {
  if (rs === 0) return 0;
  const cycles = rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
  return cycles * TIME_BASE_CYCLE_NS;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** [year, month 1-12, day 1-31] of a day count since 1970-01-01. */
function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** Saved state. */
export interface Mc146818State {
  [field: string]: Uint8Array | number | boolean;
  ram: Uint8Array;
  index: number;
  nmiDisabled: boolean;
  /** Clock time (seconds since 1970) during the second that began at `baseNs`. */
  baseSec: number;
  /** Divider phase reference: updates happen at baseNs + k s, periodic edges at baseNs + k * period. */
  baseNs: number;
  /** Interrupt flags are up to date to this time. */
  lastEvalNs: number;
  periodicDeadlineNs: number;
  updateDeadlineNs: number;
}

/** Dependencies and options the board passes to the RTC. */
export interface Mc146818Deps {
  ports: IoPorts;
  clock: Clock;
  /** IRQ 8 on the PC. */
  irq: IrqLine;
  /** Time at power-on, seconds since 1970-01-01 UTC (host time, or a fixed value for reproducible runs). */
  epochSec: number;
}

export class Mc146818 {
  /**
   * CMOS RAM (the clock registers included), the index latch, the clock's
   * base (guest seconds at a guest-time origin) and both timers' deadlines.
   */
  static readonly stateSchema = defineState<Mc146818>(
    'mc146818',
    1,
    {
      ram: u8s(CMOS_SIZE).at('_ram'),
      index: u8.at('_index').range(0, INDEX_MASK),
      nmiDisabled: bool.at('_nmiDisabled'),
      baseSec: f64.at('_baseSec'),
      baseNs: f64.at('_baseNs'),
      lastEvalNs: f64.at('_lastEvalNs'),
      periodicDeadlineNs: f64.via(
        (r: Mc146818) => r._periodic.deadlineNs,
        (r: Mc146818, v: number) => r._armAt(r._periodic, v),
      ),
      updateDeadlineNs: f64.via(
        (r: Mc146818) => r._update.deadlineNs,
        (r: Mc146818, v: number) => r._armAt(r._update, v),
      ),
    },
    {
      transient: ['_clock', '_irq', '_periodic', '_update', '_irqLevel'],
      postLoad: (r) => {
        r._ram[RtcReg.D] = RegD.VRT;
        r._baseSec = Math.floor(r._baseSec);
        // the IRQ output follows register C's IRQF
        r._irqLevel = (r._ram[RtcReg.C] & RegC.IRQF) !== 0;
        r._irq.set(r._irqLevel ? 1 : 0);
      },
    },
  );
  readonly id: string;
  private readonly _clock: Clock;
  private readonly _irq: IrqLine;
  private readonly _periodic: Timer;
  private readonly _update: Timer;
  private readonly _ram = new Uint8Array(CMOS_SIZE);
  private _index = 0;
  private _nmiDisabled = false;
  private _baseSec = 0;
  private _baseNs = 0;
  private _lastEvalNs = 0;
  private _irqLevel = false;

  constructor(id: string, deps: Mc146818Deps) {
    assert(Number.isFinite(deps.epochSec), 'mc146818: epochSec must be a finite number');
    this.id = id;
    this._clock = deps.clock;
    this._irq = deps.irq;
    this._periodic = deps.clock.timer(`${id}.periodic`, (now) => this._onTimer(now));
    this._update = deps.clock.timer(`${id}.update`, (now) => this._onTimer(now));
    const now = deps.clock.nowNs;
    this._ram[RtcReg.A] = REG_A_DEFAULT;
    this._ram[RtcReg.B] = REG_B_DEFAULT;
    this._ram[RtcReg.D] = RegD.VRT;
    this._baseSec = Math.floor(deps.epochSec);
    this._baseNs = now;
    this._lastEvalNs = now;
    this._storeTime(this._baseSec);
    deps.ports.register(id, RtcPort.INDEX, 2, {
      read8: (port) => (port === RtcPort.INDEX ? 0xff : this._readReg(this._index)),
      write8: (port, v) => {
        if (port === RtcPort.INDEX) {
          this._index = v & INDEX_MASK;
          this._nmiDisabled = (v & NMI_DISABLE) !== 0;
        } else {
          this._writeReg(this._index, v & 0xff);
        }
      },
    });
  }

  /** Whether the last index write masked NMI (the board gates NMI with it). */
  get nmiDisabled(): boolean {
    return this._nmiDisabled;
  }

  /**
   * Set a CMOS byte as the firmware will find it (memory sizes, boot order,
   * equipment, ...). Behaves as a guest write to that register: clock bytes
   * (0-9, century 0x32) set the clock, registers C and D are read-only.
   */
  setByte(index: number, value: number): void {
    assert(Number.isInteger(index) && index >= 0 && index < CMOS_SIZE, `mc146818: no CMOS byte ${index}`);
    this._writeReg(index, value & 0xff);
  }

  /** A CMOS byte as the guest would read it, without side effects (reading C does not clear it). */
  peekByte(index: number): number {
    assert(Number.isInteger(index) && index >= 0 && index < CMOS_SIZE, `mc146818: no CMOS byte ${index}`);
    const now = this._clock.nowNs;
    if (index === RtcReg.C) {
      const flags = this._ram[RtcReg.C] | this._flagsBetween(this._lastEvalNs, now);
      return (flags & FLAG_BITS) | (flags & this._ram[RtcReg.B] & FLAG_BITS ? RegC.IRQF : 0);
    }
    return this._readValue(index, now);
  }

  /** RESET pin (machine reset): interrupt enables and flags clear; time and RAM are kept (battery-backed). */
  reset(): void {
    const now = this._clock.nowNs;
    this._syncFlags(now);
    this._ram[RtcReg.B] &= ~RESET_CLEARS_B;
    this._ram[RtcReg.C] = 0;
    this._nmiDisabled = false;
    this._index = 0;
    this._changed(now);
  }

  saveState(): Mc146818State {
    return saveFields(Mc146818.stateSchema.fields, this) as unknown as Mc146818State;
  }

  loadState(s: Mc146818State): void {
    loadChecked(this.id, Mc146818.stateSchema, this, s);
  }

  private _armAt(t: Timer, deadlineNs: number): void {
    if (deadlineNs >= 0) this._clock.arm(t, deadlineNs);
    else this._clock.disarm(t);
  }

  // ---- clock ------------------------------------------------------------

  private _dividerRunning(): boolean {
    return (this._ram[RtcReg.A] & RegA.DV_MASK) >> RegA.DV_SHIFT <= Divider.LAST_RUNNING;
  }

  /** The time registers advance: divider running and SET clear. */
  private _clockRunning(): boolean {
    return this._dividerRunning() && (this._ram[RtcReg.B] & RegB.SET) === 0;
  }

  /** Current clock time in seconds since 1970 (meaningful while the clock runs). */
  private _nowSec(now: number): number {
    return this._baseSec + Math.floor((now - this._baseNs) / NS_PER_S);
  }

  /** Move baseNs to the start of the current second, keeping the divider phase. */
  private _alignBase(now: number): void {
    if (now > this._baseNs) this._baseNs += Math.floor((now - this._baseNs) / NS_PER_S) * NS_PER_S;
  }

  private _toFormat(v: number): number {
    if (this._ram[RtcReg.B] & RegB.DM_BINARY) return v;
    return ((((v / 10) | 0) % 10) << 4) | v % 10;
  }

  private _fromFormat(v: number): number {
    if (this._ram[RtcReg.B] & RegB.DM_BINARY) return v;
    return (v >> 4) * 10 + (v & 0xf);
  }

  private _formatHour(h: number): number {
    if (this._ram[RtcReg.B] & RegB.HOUR_24) return this._toFormat(h);
    return this._toFormat(h % 12 || 12) | (h >= 12 ? HOUR_PM : 0);
  }

  /** The value of clock register `reg` at time `sec`. */
  private _clockByte(reg: number, sec: number): number {
    const days = Math.floor(sec / SECONDS_PER_DAY);
    const tod = mod(sec, SECONDS_PER_DAY);
    switch (reg) {
      case RtcReg.SECONDS:
        return this._toFormat(tod % 60);
      case RtcReg.MINUTES:
        return this._toFormat(Math.floor(tod / 60) % 60);
      case RtcReg.HOURS:
        return this._formatHour(Math.floor(tod / 3600));
      case RtcReg.DAY_OF_WEEK:
        return this._toFormat(mod(days + EPOCH_DAY_OF_WEEK, 7) + 1);
      default: {
        const [y, m, d] = civilFromDays(days);
        if (reg === RtcReg.DAY_OF_MONTH) return this._toFormat(d);
        if (reg === RtcReg.MONTH) return this._toFormat(m);
        if (reg === RtcReg.YEAR) return this._toFormat(mod(y, 100));
        return this._toFormat(mod(Math.floor(y / 100), 100));
      }
    }
  }

  private static _isClockReg(reg: number): boolean {
    return (
      reg === RtcReg.SECONDS ||
      reg === RtcReg.MINUTES ||
      reg === RtcReg.HOURS ||
      (reg >= RtcReg.DAY_OF_WEEK && reg <= RtcReg.YEAR) ||
      reg === RtcReg.CENTURY
    );
  }

  /** Write the time `sec` into the clock registers in RAM (when the clock stops). */
  private _storeTime(sec: number): void {
    for (const reg of [RtcReg.SECONDS, RtcReg.MINUTES, RtcReg.HOURS, RtcReg.DAY_OF_WEEK, RtcReg.DAY_OF_MONTH, RtcReg.MONTH, RtcReg.YEAR, RtcReg.CENTURY]) {
      this._ram[reg] = this._clockByte(reg, sec);
    }
  }

  /** The time held in the clock registers in RAM (out-of-range fields carry into the next ones). */
  private _loadTime(): number {
    const r = this._ram;
    const s = this._fromFormat(r[RtcReg.SECONDS]);
    const min = this._fromFormat(r[RtcReg.MINUTES]);
    let h: number;
    if (r[RtcReg.B] & RegB.HOUR_24) h = this._fromFormat(r[RtcReg.HOURS]);
    else h = (this._fromFormat(r[RtcReg.HOURS] & ~HOUR_PM) % 12) + (r[RtcReg.HOURS] & HOUR_PM ? 12 : 0);
    let year = this._fromFormat(r[RtcReg.CENTURY]) * 100 + this._fromFormat(r[RtcReg.YEAR]);
    let month = this._fromFormat(r[RtcReg.MONTH]);
    year += Math.floor((month - 1) / 12);
    month = mod(month - 1, 12) + 1;
    const days = daysFromCivil(year, month, 1) + this._fromFormat(r[RtcReg.DAY_OF_MONTH]) - 1;
    return days * SECONDS_PER_DAY + h * 3600 + min * 60 + s;
  }

  private _alarmMatches(sec: number): boolean {
    const r = this._ram;
    for (const [alarm, reg] of ALARM_PAIRS) {
      if ((r[alarm] & ALARM_DONT_CARE) === ALARM_DONT_CARE) continue;
      if (r[alarm] !== this._clockByte(reg, sec)) return false;
    }
    return true;
  }

  // ---- interrupts ---------------------------------------------------------

  /** Set the flags of register C for everything that happened in (lastEvalNs, now]. */
  private _syncFlags(now: number): void {
    if (now <= this._lastEvalNs) return;
    this._ram[RtcReg.C] |= this._flagsBetween(this._lastEvalNs, now);
    this._lastEvalNs = now;
  }

  /** The flags that events in (last, now] set. */
  private _flagsBetween(last: number, now: number): number {
    if (now <= last || !this._dividerRunning()) return 0;
    let flags = 0;
    const period = periodicNs(this._ram[RtcReg.A] & RegA.RS_MASK);
    if (period > 0 && Math.floor((now - this._baseNs) / period) > Math.floor((last - this._baseNs) / period)) {
      flags |= RegC.PF;
    }
    if (this._clockRunning()) {
      const first = Math.floor((last - this._baseNs) / NS_PER_S) + 1;
      const lastUpdate = Math.floor((now - this._baseNs) / NS_PER_S);
      if (lastUpdate >= first) {
        flags |= RegC.UF;
        // Every time of day recurs within a day of updates, so at most that many need checking.
        const end = Math.min(lastUpdate, first + SECONDS_PER_DAY);
        if ((this._ram[RtcReg.C] & RegC.AF) === 0) {
          for (let k = first; k <= end; k++) {
            if (this._alarmMatches(this._baseSec + k)) {
              flags |= RegC.AF;
              break;
            }
          }
        }
      }
    }
    return flags;
  }

  /** Recompute IRQF and IRQ 8 from flags and enables, and arm the timers for the next event that could assert it. */
  private _changed(now: number): void {
    const r = this._ram;
    const active = r[RtcReg.C] & r[RtcReg.B] & FLAG_BITS;
    r[RtcReg.C] = (r[RtcReg.C] & FLAG_BITS) | (active ? RegC.IRQF : 0);
    const level = active !== 0;
    if (level !== this._irqLevel) {
      this._irqLevel = level;
      this._irq.set(level ? 1 : 0);
    }
    const b = r[RtcReg.B];
    const c = r[RtcReg.C];
    const period = periodicNs(r[RtcReg.A] & RegA.RS_MASK);
    if (this._dividerRunning() && period > 0 && b & RegB.PIE && !(c & RegC.PF)) {
      const k = Math.floor((now - this._baseNs) / period) + 1;
      this._clock.arm(this._periodic, this._baseNs + k * period + EDGE_MARGIN_NS);
    } else {
      this._clock.disarm(this._periodic);
    }
    const wantUpdate = (b & RegB.UIE && !(c & RegC.UF)) || (b & RegB.AIE && !(c & RegC.AF));
    if (this._clockRunning() && wantUpdate) {
      const k = Math.floor((now - this._baseNs) / NS_PER_S) + 1;
      this._clock.arm(this._update, this._baseNs + k * NS_PER_S + EDGE_MARGIN_NS);
    } else {
      this._clock.disarm(this._update);
    }
  }

  private _onTimer(now: number): void {
    this._syncFlags(now);
    this._changed(now);
  }

  // ---- registers -----------------------------------------------------------

  private _readValue(index: number, now: number): number {
    if (Mc146818._isClockReg(index) && this._clockRunning()) return this._clockByte(index, this._nowSec(now));
    if (index === RtcReg.A) {
      const r = this._ram[RtcReg.A] & ~RegA.UIP;
      const phase = mod(now - this._baseNs, NS_PER_S);
      const uip = this._clockRunning() && phase >= NS_PER_S - UIP_LEAD_NS;
      return r | (uip ? RegA.UIP : 0);
    }
    return this._ram[index];
  }

  private _readReg(index: number): number {
    const now = this._clock.nowNs;
    if (index === RtcReg.C) {
      this._syncFlags(now);
      const v = this._ram[RtcReg.C];
      this._ram[RtcReg.C] = 0;
      this._changed(now);
      return v;
    }
    return this._readValue(index, now);
  }

  private _writeReg(index: number, v: number): void {
    const now = this._clock.nowNs;
    switch (index) {
      case RtcReg.C:
      case RtcReg.D:
        return; // read-only
      case RtcReg.A:
      case RtcReg.B: {
        this._syncFlags(now);
        const wasDivider = this._dividerRunning();
        const wasRunning = this._clockRunning();
        const oldDv = (this._ram[RtcReg.A] & RegA.DV_MASK) >> RegA.DV_SHIFT;
        if (wasRunning) this._storeTime(this._nowSec(now));
        if (index === RtcReg.A) {
          this._ram[RtcReg.A] = v & ~RegA.UIP;
        } else {
          // Setting SET ends update-ended interrupts (UIE is cleared), as on the MC146818A.
          this._ram[RtcReg.B] = v & RegB.SET ? v & ~RegB.UIE : v;
        }
        if (!wasDivider && this._dividerRunning()) {
          // The divider chain restarts: the first update comes 500 ms later after a reset.
          this._baseNs = oldDv >= Divider.RESET_FIRST ? now - (NS_PER_S - DIVIDER_RESET_FIRST_UPDATE_NS) : now;
        }
        if (!wasRunning && this._clockRunning()) {
          if (wasDivider) this._alignBase(now);
          this._baseSec = this._loadTime();
        }
        this._lastEvalNs = now;
        this._changed(now);
        return;
      }
      default:
        break;
    }
    if (Mc146818._isClockReg(index)) {
      this._syncFlags(now);
      if (this._clockRunning()) {
        // The clock keeps counting from the new value; the divider phase is unchanged.
        this._storeTime(this._nowSec(now));
        this._ram[index] = v;
        this._alignBase(now);
        this._baseSec = this._loadTime();
      } else {
        this._ram[index] = v;
      }
      this._changed(now);
      return;
    }
    if (index <= RtcReg.HOURS_ALARM) this._syncFlags(now); // alarm bytes: earlier matches used the old value
    this._ram[index] = v;
    if (index <= RtcReg.HOURS_ALARM) this._changed(now);
  }
}

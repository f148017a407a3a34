/**
 * 8254 PIT: programmable interval timer, three 16-bit counters at ports
 * 0x40-0x42 and the control word register at 0x43, clocked at 1.193182 MHz.
 *
 * Reference: Intel 8254 Programmable Interval Timer datasheet (order 231164):
 * control word, counter latch and read-back commands, status byte, modes 0-5,
 * GATE effects (table "Gate Pin Operations Summary"), BCD counting. On the PC,
 * counter 0 drives IRQ0, counter 1 paced DRAM refresh, and counter 2's GATE and
 * OUT are wired to port 0x61 (see port61.ts).
 *
 * Counters are computed from the clock on demand: a counting element's value
 * is a function of the CLK ticks since it was loaded, so nothing runs per tick.
 * Only counter 0 arms a timer, for its next OUT transition.
 *
 * Simplifications (documented in docs/devices-timers.md): a count takes effect
 * at the write (not one CLK later); in modes 2 and 3 a count written while
 * counting takes effect at the end of the current period (the datasheet says the
 * end of the current half-cycle for mode 3); odd counts in mode 3 read back as
 * even values one step apart.
 */
import type { IrqLine } from '../bus/irq.js';
import type { IoPorts } from '../bus/ports.js';
import type { Clock, Timer } from '../time/clock.js';
import { bool, defineState, f64, loadChecked, saveFields, structs, u8, u16, u32, type Fields } from '../state/schema.js';

/** PIT input clock in Hz (14.31818 MHz / 12). */
export const PIT_HZ = 1193182;
const NS_PER_S = 1e9;
/** Timers fire this long after the exact edge time, so float rounding never puts them before it. */
const EDGE_MARGIN_NS = 1;

/** I/O ports of the PIT. */
export const enum PitPort {
  COUNTER0 = 0x40,
  COUNTER1 = 0x41,
  COUNTER2 = 0x42,
  CONTROL = 0x43,
}

/** Fields of the control word (port 0x43). */
export const enum ControlWord {
  BCD = 0x01,
  MODE_SHIFT = 1,
  MODE_MASK = 0x07,
  RW_SHIFT = 4,
  RW_MASK = 0x03,
  SC_SHIFT = 6,
  /** SC = 11: read-back command. */
  SC_READ_BACK = 3,
}

/** RW field of the control word: which bytes of the count are accessed. */
export const enum RwMode {
  LATCH = 0,
  LSB = 1,
  MSB = 2,
  LSB_MSB = 3,
}

/** Read-back command bits (control word with SC = 11). Bits 5 and 4 are active low. */
export const enum ReadBack {
  CNT0 = 0x02,
  CNT1 = 0x04,
  CNT2 = 0x08,
  NO_STATUS = 0x10,
  NO_COUNT = 0x20,
}

/** Status byte returned after a read-back status latch. */
export const enum PitStatus {
  BCD = 0x01,
  NULL_COUNT = 0x40,
  OUTPUT = 0x80,
}

/** Counting element modulus in binary and in BCD. */
const BINARY_MODULUS = 0x10000;
const BCD_MODULUS = 10000;

/** Counter phase. */
const enum Phase {
  /** No count loaded yet (after a control word), or waiting for a GATE trigger (modes 1 and 5). */
  IDLE = 0,
  COUNTING = 1,
}

/** Which byte of a latched count or of a LSB/MSB access comes next. */
const enum Byte {
  LSB = 0,
  MSB = 1,
}

/** Saved state of one counter. */
export interface PitChannelState {
  [field: string]: number | boolean;
  mode: number;
  rw: number;
  bcd: boolean;
  /** Count register: the last count written (raw, BCD if in BCD mode). */
  cr: number;
  /** Effective count the counting element reloads with (1..0x10000). */
  period: number;
  phase: number;
  loadNs: number;
  /** CLK ticks counted when GATE stopped counting, or -1 while not paused. */
  pausedTicks: number;
  /** Counting-element value shown while idle. */
  heldCe: number;
  idleOut: boolean;
  /** A count written in mode 2/3 waits for the end of the current period. */
  reloadPending: boolean;
  gate: boolean;
  nullCount: boolean;
  countWritten: boolean;
  writeByte: number;
  writeLsb: number;
  readByte: number;
  countLatched: boolean;
  latchedCount: number;
  latchedByte: number;
  statusLatched: boolean;
  status: number;
}

/** Saved state of the PIT. */
export interface I8254State {
  [field: string]: PitChannelState[] | number;
  channels: PitChannelState[];
  /** Counter 0 ticks at its last OUT evaluation (edges after it are still to report). */
  lastTick0: number;
  /** Counter 0 timer deadline, or -1. */
  deadlineNs: number;
}

/** Dependencies the board passes to the PIT. */
export interface I8254Deps {
  ports: IoPorts;
  clock: Clock;
  /** Counter 0 OUT (IRQ 0 on the PC). */
  irq: IrqLine;
}

/** Time (from load) of CLK tick `n`. */
function tickNs(n: number): number {
  return (n * NS_PER_S) / PIT_HZ;
}

/** Whole CLK ticks in `dt` ns: the largest n with tickNs(n) <= dt. */
function ticksIn(dt: number): number {
  if (!(dt > 0)) return 0;
  let n = Math.floor((dt * PIT_HZ) / NS_PER_S);
  while (tickNs(n + 1) <= dt) n++;
  while (n > 0 && tickNs(n) > dt) n--;
  return n;
}

function bcdToBin(v: number): number {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}

function binToBcd(v: number): number {
  return ((((v / 1000) | 0) % 10) << 12) | ((((v / 100) | 0) % 10) << 8) | ((((v / 10) | 0) % 10) << 4) | v % 10;
}

class Channel {
  mode = 0;
  rw = RwMode.LSB_MSB;
  bcd = false;
  cr = 0;
  period = BINARY_MODULUS;
  phase = Phase.IDLE;
  loadNs = 0;
  pausedTicks = -1;
  heldCe = 0;
  idleOut = false;
  reloadPending = false;
  gate: boolean;
  nullCount = false;
  /** A complete count has been written since the control word (modes 1 and 5 may be triggered). */
  countWritten = false;
  writeByte = Byte.LSB;
  writeLsb = 0;
  readByte = Byte.LSB;
  countLatched = false;
  latchedCount = 0;
  latchedByte = Byte.LSB;
  statusLatched = false;
  status = 0;

  constructor(readonly gateDefault: boolean) {
    this.gate = gateDefault;
  }

  reset(): void {
    Object.assign(this, new Channel(this.gateDefault));
  }

  private _modulus(): number {
    return this.bcd ? BCD_MODULUS : BINARY_MODULUS;
  }

  /** CLK ticks since the counting element was loaded. */
  ticks(now: number): number {
    if (this.pausedTicks >= 0) return this.pausedTicks;
    return ticksIn(now - this.loadNs);
  }

  /** Apply a count that was waiting for the end of a period (modes 2, 3), if that point has passed. */
  normalize(now: number): boolean {
    if (!this.reloadPending || this.phase !== Phase.COUNTING || this.pausedTicks >= 0) return false;
    const d = this.ticks(now);
    if (d < this.period) return false;
    this.loadNs += tickNs(this.period);
    this.period = this._effective(this.cr);
    this.reloadPending = false;
    this.nullCount = false;
    return true;
  }

  private _effective(cr: number): number {
    if (this.bcd) return cr === 0 ? BCD_MODULUS : bcdToBin(cr);
    return cr === 0 ? BINARY_MODULUS : cr;
  }

  /** OUT at tick d of the current load. */
  outAt(d: number): boolean {
    const n = this.period;
    switch (this.mode) {
      case 0: // OUT rises at terminal count and stays high
      case 1: // one-shot: low from the trigger until terminal count
        return d >= n;
      case 2:
        return d % n !== n - 1;
      case 3:
        return d % n < Math.ceil(n / 2);
      default: // 4, 5: one-CLK low strobe at terminal count
        return d !== n;
    }
  }

  out(now: number): boolean {
    if (this.phase === Phase.IDLE) return this.idleOut;
    if (!this.gate && (this.mode === 2 || this.mode === 3)) return true;
    return this.outAt(this.ticks(now));
  }

  /** Counting element value now (binary, 0..modulus-1). */
  ce(now: number): number {
    if (this.phase === Phase.IDLE) return this.heldCe;
    const d = this.ticks(now);
    const n = this.period;
    const m = this._modulus();
    switch (this.mode) {
      case 2:
        return n - (d % n);
      case 3: {
        // Even N: N, N-2, ... 2 in each half. Odd N: N, N-1, N-3, ... 2 while OUT is
        // high ((N+1)/2 CLKs), then N, N-3, ... 2 while low ((N-1)/2 CLKs).
        const p = d % n;
        const h = Math.ceil(n / 2);
        let v: number;
        if ((n & 1) === 0) v = n - 2 * (p < h ? p : p - h);
        else if (p < h) v = p === 0 ? n : n + 1 - 2 * p;
        else v = p === h ? n : n - 1 - 2 * (p - h);
        return v % m;
      }
      default:
        return (((n - d) % m) + m) % m;
    }
  }

  /** The next tick (> d) at which OUT changes, or -1. */
  nextEdge(d: number): number {
    const n = this.period;
    switch (this.mode) {
      case 0:
      case 1:
        return d < n ? n : -1;
      case 2: {
        if (n === 1) return -1;
        const base = d - (d % n);
        return d % n < n - 1 ? base + n - 1 : base + n;
      }
      case 3: {
        if (n === 1) return -1;
        const base = d - (d % n);
        const h = Math.ceil(n / 2);
        return d % n < h ? base + h : base + n;
      }
      default:
        return d < n ? n : d === n ? n + 1 : -1;
    }
  }

  /** Whether OUT rose at some tick in (a, b]. */
  roseBetween(a: number, b: number): boolean {
    const n = this.period;
    switch (this.mode) {
      case 0:
      case 1:
        return a < n && n <= b;
      case 2:
      case 3:
        return n > 1 && Math.floor(b / n) > Math.floor(a / n);
      default:
        return a < n + 1 && n + 1 <= b;
    }
  }

  /** Start counting from the count register now. */
  load(now: number): void {
    this.period = this._effective(this.cr);
    this.loadNs = now;
    this.phase = Phase.COUNTING;
    this.pausedTicks = this.gateStops() && !this.gate ? 0 : -1;
    this.reloadPending = false;
    this.nullCount = false;
  }

  /** Modes where GATE low suspends counting. */
  gateStops(): boolean {
    return this.mode === 0 || this.mode === 2 || this.mode === 3 || this.mode === 4;
  }

  stop(now: number, out: boolean): void {
    this.heldCe = this.ce(now);
    this.phase = Phase.IDLE;
    this.idleOut = out;
    this.pausedTicks = -1;
  }

  writeControl(v: number, now: number): void {
    this.stop(now, false);
    this.rw = (v >> ControlWord.RW_SHIFT) & ControlWord.RW_MASK;
    let mode = (v >> ControlWord.MODE_SHIFT) & ControlWord.MODE_MASK;
    if (mode > 5) mode -= 4; // 110 and 111 are modes 2 and 3
    this.mode = mode;
    this.bcd = (v & ControlWord.BCD) !== 0;
    // OUT after a control word: low in mode 0, high in every other mode.
    this.idleOut = mode !== 0;
    this.nullCount = true;
    this.countWritten = false;
    this.writeByte = Byte.LSB;
    this.readByte = Byte.LSB;
    this.countLatched = false;
  }

  latchCount(now: number): void {
    if (this.countLatched) return; // a second latch before the count is read is ignored
    this.countLatched = true;
    this.latchedByte = Byte.LSB;
    const ce = this.ce(now);
    this.latchedCount = this.bcd ? binToBcd(ce) : ce;
  }

  latchStatus(now: number): void {
    if (this.statusLatched) return;
    this.statusLatched = true;
    this.status =
      (this.out(now) ? PitStatus.OUTPUT : 0) |
      (this.nullCount ? PitStatus.NULL_COUNT : 0) |
      (this.rw << ControlWord.RW_SHIFT) |
      (this.mode << ControlWord.MODE_SHIFT) |
      (this.bcd ? PitStatus.BCD : 0);
  }

  read(now: number): number {
    if (this.statusLatched) {
      this.statusLatched = false;
      return this.status;
    }
    let value: number;
    let which: number;
    if (this.countLatched) {
      value = this.latchedCount;
      if (this.rw === RwMode.LSB_MSB && this.latchedByte === Byte.LSB) {
        which = Byte.LSB;
        this.latchedByte = Byte.MSB;
      } else {
        which = this.rw === RwMode.LSB_MSB ? Byte.MSB : this.rw === RwMode.MSB ? Byte.MSB : Byte.LSB;
        this.countLatched = false;
      }
    } else {
      const ce = this.ce(now);
      value = this.bcd ? binToBcd(ce) : ce;
      if (this.rw === RwMode.LSB_MSB) {
        which = this.readByte;
        this.readByte = this.readByte === Byte.LSB ? Byte.MSB : Byte.LSB;
      } else {
        which = this.rw === RwMode.MSB ? Byte.MSB : Byte.LSB;
      }
    }
    return which === Byte.MSB ? (value >> 8) & 0xff : value & 0xff;
  }

  /** Write one byte of a count. */
  writeCount(v: number, now: number): void {
    if (this.rw === RwMode.LSB_MSB && this.writeByte === Byte.LSB) {
      this.writeLsb = v;
      this.writeByte = Byte.MSB;
      // Mode 0: writing the first byte stops counting and drives OUT low at once.
      if (this.mode === 0) this.stop(now, false);
      return;
    }
    if (this.rw === RwMode.LSB_MSB) {
      this.cr = this.writeLsb | (v << 8);
      this.writeByte = Byte.LSB;
    } else {
      this.cr = this.rw === RwMode.MSB ? v << 8 : v;
    }
    this.nullCount = true;
    this.countWritten = true;
    switch (this.mode) {
      case 0:
      case 4:
        this.load(now); // loaded on the next CLK, counting restarts from the new count
        break;
      case 1:
      case 5: // the count waits for a GATE trigger
        break;
      default:
        if (this.phase === Phase.IDLE) this.load(now);
        else this.reloadPending = true;
        break;
    }
  }

  setGate(level: boolean, now: number): void {
    const rising = level && !this.gate;
    const falling = !level && this.gate;
    this.gate = level;
    switch (this.mode) {
      case 0:
      case 4:
        if (this.phase !== Phase.COUNTING) break;
        if (falling) this.pausedTicks = this.ticks(now);
        if (rising && this.pausedTicks >= 0) {
          this.loadNs = now - tickNs(this.pausedTicks + 0.5);
          this.pausedTicks = -1;
        }
        break;
      case 1:
      case 5:
        if (rising && this.countWritten) this.load(now);
        break;
      default: // 2, 3: low stops counting (OUT high), a rising edge reloads
        if (this.phase === Phase.IDLE) break;
        if (falling) this.pausedTicks = this.ticks(now);
        if (rising) {
          this.load(now);
        }
        break;
    }
  }
}

/** One counter's state (I8254.stateSchema). */
const CHANNEL_FIELDS: Fields = {
  mode: u8.range(0, 5),
  rw: u8.range(1, 3),
  bcd: bool,
  cr: u16,
  period: u32.range(1, BINARY_MODULUS),
  phase: u8.range(Phase.IDLE, Phase.COUNTING),
  loadNs: f64,
  pausedTicks: f64.range(-1, Infinity),
  heldCe: u16,
  idleOut: bool,
  reloadPending: bool,
  gate: bool,
  nullCount: bool,
  countWritten: bool,
  writeByte: u8.range(Byte.LSB, Byte.MSB),
  writeLsb: u8,
  readByte: u8.range(Byte.LSB, Byte.MSB),
  countLatched: bool,
  latchedCount: u16,
  latchedByte: u8.range(Byte.LSB, Byte.MSB),
  statusLatched: bool,
  status: u8,
};

/** The 8254 PIT of the PC: counter 0 on IRQ 0, counter 2 gated from port 0x61. */
export class I8254 {
  /** The three counters, counter 0's OUT as last evaluated and its timer; loading re-arms the timer and drives IRQ 0. */
  static readonly stateSchema = defineState<I8254>(
    'i8254',
    1,
    {
      channels: structs(3, CHANNEL_FIELDS).at('_ch'),
      lastTick0: f64.at('_lastTick0').range(0, Infinity),
      deadlineNs: f64.via(
        (p: I8254) => p._timer.deadlineNs,
        (p: I8254, v: number) => (v >= 0 ? p._clock.arm(p._timer, v) : p._clock.disarm(p._timer)),
      ),
    },
    {
      transient: ['_clock', '_irq', '_timer', '_irqLevel', '_ch[].gateDefault'],
      postLoad: (p) => {
        p._lastTick0 = Math.floor(p._lastTick0);
        for (const c of p._ch) c.pausedTicks = c.pausedTicks >= 0 ? Math.floor(c.pausedTicks) : -1;
        p._irqLevel = p._ch[0].out(p._clock.nowNs);
        p._irq.set(p._irqLevel ? 1 : 0);
      },
    },
  );
  readonly id: string;
  private readonly _clock: Clock;
  private readonly _irq: IrqLine;
  private readonly _timer: Timer;
  // On the PC, GATE0 and GATE1 are tied high; GATE2 is port 0x61 bit 0 (low at reset).
  private readonly _ch = [new Channel(true), new Channel(true), new Channel(false)];
  private _lastTick0 = 0;
  private _irqLevel = false;

  constructor(id: string, deps: I8254Deps) {
    this.id = id;
    this._clock = deps.clock;
    this._irq = deps.irq;
    this._timer = deps.clock.timer(`${id}.counter0`, (now) => this._onTimer(now));
    deps.ports.register(id, PitPort.COUNTER0, 4, {
      read8: (port) => this._read(port),
      write8: (port, v) => this._write(port, v & 0xff),
    });
  }

  /** Drive a counter's GATE input (the board wires counter 2's to port 0x61). */
  setGate(counter: number, level: boolean): void {
    const ch = this._ch[counter];
    if (!ch) return;
    const now = this._clock.nowNs;
    this._touch(counter, now);
    ch.setGate(level, now);
    if (counter === 0) this._settle(now);
  }

  /** A counter's GATE input level. */
  gate(counter: number): boolean {
    return this._ch[counter]?.gate ?? false;
  }

  /** A counter's OUT level now (counter 2's is readable at port 0x61 bit 5). */
  out(counter: number): boolean {
    const ch = this._ch[counter];
    if (!ch) return false;
    const now = this._clock.nowNs;
    this._touch(counter, now);
    return ch.out(now);
  }

  reset(): void {
    for (const ch of this._ch) ch.reset();
    this._lastTick0 = 0;
    this._clock.disarm(this._timer);
    this._setIrq(this._ch[0].out(this._clock.nowNs));
  }

  saveState(): I8254State {
    return saveFields(I8254.stateSchema.fields, this) as unknown as I8254State;
  }

  loadState(s: I8254State): void {
    loadChecked(this.id, I8254.stateSchema, this, s);
  }

  private _read(port: number): number {
    const i = port - PitPort.COUNTER0;
    if (i === 3) return 0xff; // the control word register is write-only
    const now = this._clock.nowNs;
    this._touch(i, now);
    return this._ch[i].read(now);
  }

  private _write(port: number, v: number): void {
    const now = this._clock.nowNs;
    const i = port - PitPort.COUNTER0;
    if (i < 3) {
      this._touch(i, now);
      this._ch[i].writeCount(v, now);
      if (i === 0) this._settle(now);
      return;
    }
    const sc = v >> ControlWord.SC_SHIFT;
    if (sc === ControlWord.SC_READ_BACK) {
      for (let c = 0; c < 3; c++) {
        if ((v & (ReadBack.CNT0 << c)) === 0) continue;
        const ch = this._ch[c];
        this._touch(c, now);
        if ((v & ReadBack.NO_STATUS) === 0) ch.latchStatus(now);
        if ((v & ReadBack.NO_COUNT) === 0) ch.latchCount(now);
      }
      return;
    }
    const ch = this._ch[sc];
    this._touch(sc, now);
    if (((v >> ControlWord.RW_SHIFT) & ControlWord.RW_MASK) === RwMode.LATCH) {
      ch.latchCount(now);
      return;
    }
    ch.writeControl(v, now);
    if (sc === 0) this._settle(now);
  }

  private _setIrq(level: boolean): void {
    if (level !== this._irqLevel) {
      this._irqLevel = level;
      this._irq.set(level ? 1 : 0);
    }
  }

  private _onTimer(now: number): void {
    this._catchUp(now);
    this._settle(now);
  }

  /** Bring a counter up to `now` before it is looked at or changed. */
  private _touch(counter: number, now: number): void {
    if (counter === 0) {
      this._catchUp(now);
      this._settle(now);
    } else {
      this._ch[counter].normalize(now);
    }
  }

  /**
   * Deliver counter 0's OUT transitions up to `now` with its current programming.
   * Rising edges the clock skipped over (a coarse advance) are delivered as one
   * pulse, which is all an edge-triggered PIC input can see.
   */
  private _catchUp(now: number): void {
    const ch = this._ch[0];
    if (ch.phase !== Phase.COUNTING || ch.pausedTicks >= 0) return;
    let rose = false;
    if (ch.reloadPending && ch.ticks(now) >= ch.period) {
      rose = ch.roseBetween(this._lastTick0, ch.period);
      ch.normalize(now);
      this._lastTick0 = 0;
    }
    rose = rose || ch.roseBetween(this._lastTick0, ch.ticks(now));
    if (rose) {
      this._setIrq(false);
      this._setIrq(true);
    }
  }

  /** Drive IRQ 0 from counter 0's OUT now, and arm the timer for its next transition. */
  private _settle(now: number): void {
    const ch = this._ch[0];
    this._setIrq(ch.out(now));
    this._lastTick0 = ch.phase === Phase.COUNTING ? ch.ticks(now) : 0;
    this._arm(now);
  }

  private _arm(now: number): void {
    const ch = this._ch[0];
    if (ch.phase !== Phase.COUNTING || ch.pausedTicks >= 0 || (!ch.gate && (ch.mode === 2 || ch.mode === 3))) {
      this._clock.disarm(this._timer);
      return;
    }
    const d = ch.ticks(now);
    let next = ch.nextEdge(d);
    if (ch.reloadPending && (next < 0 || next > ch.period)) next = ch.period;
    if (next < 0) {
      this._clock.disarm(this._timer);
      return;
    }
    this._clock.arm(this._timer, ch.loadNs + tickNs(next) + EDGE_MARGIN_NS);
  }
}

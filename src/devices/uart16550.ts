/**
 * NS16550A UART with FIFOs (National Semiconductor PC16550D datasheet, "UART
 * with FIFOs", June 1995): the PC's COM ports (COM1 0x3F8/IRQ4, COM2 0x2F8/IRQ3,
 * COM3 0x3E8/IRQ4, COM4 0x2E8/IRQ3).
 *
 * Modelled: all eight registers and the divisor latch; 16-byte receive and
 * transmit FIFOs with the four receiver trigger levels (or one holding
 * register each when the FIFOs are off); the transmit shift register and the
 * receiver timed by the programmed frame (start + data + parity + stop bits
 * at the divisor's baud rate) in guest time; line status errors per received
 * character; the character timeout indication; the interrupt priorities of
 * the IIR; the modem status inputs and their delta bits; loopback mode with
 * its wiring (TX->RX, RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD). As on a PC,
 * the interrupt output reaches the IRQ line only through the OUT2 pin, which
 * is inactive while MCR.OUT2 is clear and in loopback mode.
 *
 * Host side: transmitted bytes go to a CharSink as each frame finishes (not in
 * loopback). Received bytes come from the board calling `receive(bytes)` at
 * slice boundaries; they wait in a host-side queue and enter the receiver one
 * frame time apart while the FIFO has room, so pasted text is never lost.
 *
 * Timing: a frame takes its wire time at the programmed baud rate, but never
 * more than `maxCharTimeNs` (1 us by default), so a guest that polls LSR.THRE
 * or LSR.TEMT at 9600 baud does not spend guest seconds on a boot log. THRE and
 * TEMT still fall and rise as on the chip (THRE when the holding register or
 * FIFO empties into the shift register, TEMT when the last stop bit is sent),
 * which is what Linux's 8250 driver probes for.
 */
import type { IrqLine } from '../bus/irq.js';
import type { IoPorts } from '../bus/ports.js';
import { bool, defineState, f64, loadChecked, saveFields, u8, u8s, u16, u16s } from '../state/schema.js';
import type { Clock, Timer } from '../time/clock.js';
import type { CharSink } from './backends.js';

/** Register offsets from the base port. */
export const enum UartReg {
  RBR_THR_DLL = 0,
  IER_DLM = 1,
  IIR_FCR = 2,
  LCR = 3,
  MCR = 4,
  LSR = 5,
  MSR = 6,
  SCR = 7,
}
/** Number of ports the UART decodes. */
export const UART_PORT_COUNT = 8;

/** Interrupt Enable Register. */
export const enum Ier {
  ERBFI = 0x01, // received data available (and character timeout)
  ETBEI = 0x02, // transmitter holding register empty
  ELSI = 0x04, // receiver line status
  EDSSI = 0x08, // modem status
  MASK = 0x0f, // bits 4-7 are always 0 on a 16550A
}

/** Interrupt Identification Register. */
export const enum Iir {
  NO_INT = 0x01,
  RLS = 0x06, // priority 1: receiver line status
  RDA = 0x04, // priority 2: received data available
  CTI = 0x0c, // priority 2: character timeout indication
  THRE = 0x02, // priority 3: transmitter holding register empty
  MSI = 0x00, // priority 4: modem status
  FIFOS_ENABLED = 0xc0,
}

/** FIFO Control Register. */
export const enum Fcr {
  ENABLE = 0x01,
  RX_RESET = 0x02,
  TX_RESET = 0x04,
  DMA_MODE = 0x08,
  TRIGGER_SHIFT = 6,
}

/** Line Control Register. */
export const enum Lcr {
  WLS = 0x03, // word length select: 5 + value bits
  STB = 0x04, // 2 stop bits (1.5 with 5-bit words)
  PEN = 0x08, // parity enable
  EPS = 0x10,
  STICK = 0x20,
  BREAK = 0x40,
  DLAB = 0x80, // divisor latch access
}

/** Modem Control Register. */
export const enum Mcr {
  DTR = 0x01,
  RTS = 0x02,
  OUT1 = 0x04,
  OUT2 = 0x08, // on a PC: enables the interrupt output onto the ISA IRQ line
  LOOP = 0x10,
  MASK = 0x1f,
}

/** Line Status Register. */
export const enum Lsr {
  DR = 0x01,
  OE = 0x02,
  PE = 0x04,
  FE = 0x08,
  BI = 0x10,
  THRE = 0x20,
  TEMT = 0x40,
  RXFIFO_ERROR = 0x80,
  ERRORS = 0x1e, // OE | PE | FE | BI, cleared by reading LSR
}

/** Modem Status Register. */
export const enum Msr {
  DCTS = 0x01,
  DDSR = 0x02,
  TERI = 0x04,
  DDCD = 0x08,
  CTS = 0x10,
  DSR = 0x20,
  RI = 0x40,
  DCD = 0x80,
  DELTAS = 0x0f,
  LINES = 0xf0,
}

/** FIFO depth of the 16550A (both directions). */
export const UART_FIFO_BYTES = 16;
/** Receiver FIFO trigger levels selected by FCR bits 7:6. */
const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** The baud-rate generator input on a PC: 1.8432 MHz, divided by 16 x divisor. */
const UART_INPUT_CLOCK_HZ = 1_843_200;
const SAMPLES_PER_BIT = 16;
const NS_PER_SECOND = 1e9;
/** A divisor of 0 makes the 16-bit counter run its full length. */
const DIVISOR_ZERO_AS = 0x10000;
/** Divisor after reset: 12, i.e. 9600 baud (the chip leaves it undefined; QEMU and BIOSes use this). */
const RESET_DIVISOR = 12;
/** The character timeout fires after no FIFO activity for four character times. */
const CTI_CHARACTERS = 4;
/** Default cap on one frame's duration: fast enough that polled output costs the guest little time. */
export const DEFAULT_MAX_CHAR_TIME_NS = 1000;
/** Host-side receive queue limit; bytes beyond it are dropped and counted. */
export const UART_HOST_QUEUE_MAX = 1 << 20;
/** In the host queue and the receive FIFO, a received break condition (a null character with BI). */
const BREAK_MARK = 0x100;
/** Modem inputs when a host is attached: carrier, data set ready and clear to send (as QEMU's default). */
const HOST_CONNECTED_LINES = Msr.DCD | Msr.DSR | Msr.CTS;

export interface UartOptions {
  /** Longest a frame may take in guest ns (Infinity: exact wire timing). Default DEFAULT_MAX_CHAR_TIME_NS. */
  maxCharTimeNs?: number;
}

/** The UART's saved state: the chip's registers, FIFOs, shift registers, timer deadlines and pending host input. */
export interface Uart16550State {
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  divisor: number;
  fifoEnabled: boolean;
  fcrBits: number; // trigger level and DMA mode bits as last written
  lsrErrors: number;
  msr: number;
  hostLines: number;
  thrIpending: boolean;
  ctiPending: boolean;
  rxData: Uint8Array;
  rxFlags: Uint8Array;
  rxHead: number;
  rxCount: number;
  txData: Uint8Array;
  txHead: number;
  txCount: number;
  tsrFull: boolean;
  tsr: number;
  txDeadlineNs: number;
  rxDeadlineNs: number;
  ctiDeadlineNs: number;
  hostQueue: Uint16Array;
}

export class Uart16550 {
  /**
   * The registers, both FIFOs, the shift register, the three timers'
   * deadlines and host input not yet received. Loading masks reserved bits,
   * bounds the FIFO indices by the FIFO mode, re-arms the timers and drives
   * the IRQ.
   */
  static readonly stateSchema = defineState<Uart16550>(
    'uart16550',
    1,
    {
      ier: u8.at('_ier').range(0, Ier.MASK),
      lcr: u8.at('_lcr'),
      mcr: u8.at('_mcr').range(0, Mcr.MASK),
      scr: u8.at('_scr'),
      divisor: u16.at('_divisor'),
      fifoEnabled: bool.at('_fifoEnabled'),
      fcrBits: u8.at('_fcrBits'),
      lsrErrors: u8.at('_lsrErrors'),
      msr: u8.at('_msr'),
      hostLines: u8.at('_hostLines'),
      thrIpending: bool.at('_thrIpending'),
      ctiPending: bool.at('_ctiPending'),
      rxData: u8s(UART_FIFO_BYTES).at('_rxData'),
      rxFlags: u8s(UART_FIFO_BYTES).at('_rxFlags'),
      rxHead: u8.at('_rxHead').range(0, UART_FIFO_BYTES - 1),
      rxCount: u8.at('_rxCount').range(0, UART_FIFO_BYTES),
      txData: u8s(UART_FIFO_BYTES).at('_txData'),
      txHead: u8.at('_txHead').range(0, UART_FIFO_BYTES - 1),
      txCount: u8.at('_txCount').range(0, UART_FIFO_BYTES),
      tsrFull: bool.at('_tsrFull'),
      tsr: u8.at('_tsr'),
      txDeadlineNs: f64.at('_txDeadlineNs'),
      rxDeadlineNs: f64.at('_rxDeadlineNs'),
      ctiDeadlineNs: f64.at('_ctiDeadlineNs'),
      hostQueue: u16s(UART_HOST_QUEUE_MAX)
        .upTo()
        .via(
          (u: Uart16550) => Uint16Array.from(u._hostQueue.slice(u._hostHead)),
          (u: Uart16550, q: Uint16Array) => {
            u._hostQueue = Array.from(q, (v) => (v > BREAK_MARK ? v & 0xff : v));
            u._hostHead = 0;
          },
        ),
    },
    {
      transient: ['droppedInput', '_irq', '_clock', '_sink', '_base', '_maxCharTimeNs', '_txTimer', '_rxTimer', '_ctiTimer', '_hostQueue', '_hostHead', '_irqLevel', '_eventNs'],
      postLoad: (u) => {
        const cap = u._fifoEnabled ? UART_FIFO_BYTES : 1;
        u._fcrBits &= 0xc8;
        u._lsrErrors &= Lsr.ERRORS;
        u._hostLines &= Msr.LINES;
        for (let i = 0; i < UART_FIFO_BYTES; i++) u._rxFlags[i] &= Lsr.PE | Lsr.FE | Lsr.BI;
        u._rxCount = Math.min(u._rxCount, cap);
        u._txCount = Math.min(u._txCount, cap);
        const deadline = (d: number): number => (d >= 0 ? d : -1);
        // a busy shift register always has a deadline; an idle one never has
        let tx = deadline(u._txDeadlineNs);
        if (u._tsrFull && tx < 0) tx = u._clock.nowNs;
        if (!u._tsrFull) tx = -1;
        u._setTimer(u._txTimer, tx);
        u._setTimer(u._rxTimer, deadline(u._rxDeadlineNs));
        u._setTimer(u._ctiTimer, deadline(u._ctiDeadlineNs));
        u._updateIrq(true);
      },
    },
  );
  readonly id: string;
  /** Host bytes dropped because the host-side queue was full (UART_HOST_QUEUE_MAX). */
  droppedInput = 0;

  private readonly _irq: IrqLine;
  private readonly _clock: Clock;
  private readonly _sink: CharSink;
  private readonly _base: number;
  private readonly _maxCharTimeNs: number;
  private readonly _txTimer: Timer;
  private readonly _rxTimer: Timer;
  private readonly _ctiTimer: Timer;

  private _ier = 0;
  private _lcr = 0;
  private _mcr = 0;
  private _scr = 0;
  private _divisor = RESET_DIVISOR;
  private _fifoEnabled = false;
  private _fcrBits = 0;
  private _lsrErrors = 0;
  private _msr = 0;
  private _hostLines = HOST_CONNECTED_LINES;
  private _thrIpending = false;
  private _ctiPending = false;
  private readonly _rxData = new Uint8Array(UART_FIFO_BYTES);
  private readonly _rxFlags = new Uint8Array(UART_FIFO_BYTES);
  private _rxHead = 0;
  private _rxCount = 0;
  private readonly _txData = new Uint8Array(UART_FIFO_BYTES);
  private _txHead = 0;
  private _txCount = 0;
  private _tsrFull = false;
  private _tsr = 0;
  private _txDeadlineNs = -1;
  private _rxDeadlineNs = -1;
  private _ctiDeadlineNs = -1;
  /** Host input not yet received: bytes, or BREAK_MARK. Consumed from _hostHead. */
  private _hostQueue: number[] = [];
  private _hostHead = 0;
  private _irqLevel = 0;
  /** While a timer callback runs: its deadline, the guest time of the event; else -1. */
  private _eventNs = -1;

  constructor(id: string, ports: IoPorts, basePort: number, irq: IrqLine, clock: Clock, sink: CharSink, opts: UartOptions = {}) {
    this.id = id;
    this._irq = irq;
    this._clock = clock;
    this._sink = sink;
    this._base = basePort;
    const cap = opts.maxCharTimeNs ?? DEFAULT_MAX_CHAR_TIME_NS;
    this._maxCharTimeNs = cap > 0 ? cap : DEFAULT_MAX_CHAR_TIME_NS;
    // each callback runs at its own deadline's time, however late the clock noticed it
    this._txTimer = clock.timer(`${id}.tx`, () => this._atDeadline(this._txDeadlineNs, () => this._txDone()));
    this._rxTimer = clock.timer(`${id}.rx`, () => this._atDeadline(this._rxDeadlineNs, () => this._rxArrive()));
    this._ctiTimer = clock.timer(`${id}.cti`, () => this._atDeadline(this._ctiDeadlineNs, () => this._ctiExpire()));
    ports.register(id, basePort, UART_PORT_COUNT, {
      read8: (port) => this._read((port - this._base) & 7),
      write8: (port, v) => this._write((port - this._base) & 7, v & 0xff),
    });
    this.reset();
  }

  /** Master reset (the MR pin): registers to their datasheet reset values. Pending host input is kept. */
  reset(): void {
    this._ier = 0;
    this._lcr = 0;
    this._mcr = 0;
    this._scr = 0;
    this._divisor = RESET_DIVISOR;
    this._fifoEnabled = false;
    this._fcrBits = 0;
    this._lsrErrors = 0;
    this._thrIpending = false;
    this._ctiPending = false;
    this._rxHead = this._rxCount = 0;
    this._txHead = this._txCount = 0;
    this._tsrFull = false;
    this._tsr = 0;
    this._setTimer(this._txTimer, -1);
    this._setTimer(this._rxTimer, -1);
    this._setTimer(this._ctiTimer, -1);
    this._msr = this._modemInputs(); // deltas cleared
    this._scheduleRx();
    this._updateIrq(true);
  }

  /**
   * Host input: queue bytes to arrive on the serial line. The board calls this
   * at slice boundaries; the bytes enter the receiver one frame apart as the
   * FIFO has room. Input is ignored by the receiver while in loopback mode (it
   * stays queued until loopback ends).
   */
  receive(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this._enqueueHost(bytes[i]);
    this._scheduleRx();
  }

  /** Host input: a break condition on the line (received as a null character with LSR.BI, e.g. Linux's SysRq). */
  receiveBreak(): void {
    this._enqueueHost(BREAK_MARK);
    this._scheduleRx();
  }

  /** Host bytes queued but not yet received by the UART (for host-side flow control). */
  get pendingInput(): number {
    return this._hostQueue.length - this._hostHead;
  }

  /** The modem output lines as the host sees them (MCR bits DTR/RTS/OUT1/OUT2; 0 in loopback, where the pins are inactive). */
  get modemOutputs(): number {
    return this._mcr & Mcr.LOOP ? 0 : this._mcr & (Mcr.DTR | Mcr.RTS | Mcr.OUT1 | Mcr.OUT2);
  }

  /** Host side: set the modem status inputs (Msr.CTS | DSR | RI | DCD). Default: CTS, DSR and DCD active. */
  setModemLines(lines: number): void {
    this._hostLines = lines & Msr.LINES;
    this._updateMsr();
    this._updateIrq(false);
  }

  // ---- register access

  private _read(off: number): number {
    switch (off) {
      case UartReg.RBR_THR_DLL:
        if (this._lcr & Lcr.DLAB) return this._divisor & 0xff;
        return this._readRbr();
      case UartReg.IER_DLM:
        if (this._lcr & Lcr.DLAB) return (this._divisor >>> 8) & 0xff;
        return this._ier;
      case UartReg.IIR_FCR:
        return this._readIir();
      case UartReg.LCR:
        return this._lcr;
      case UartReg.MCR:
        return this._mcr;
      case UartReg.LSR:
        return this._readLsr();
      case UartReg.MSR: {
        const v = this._msr;
        this._msr &= Msr.LINES;
        this._updateIrq(false);
        return v;
      }
      default:
        return this._scr;
    }
  }

  private _write(off: number, v: number): void {
    switch (off) {
      case UartReg.RBR_THR_DLL:
        if (this._lcr & Lcr.DLAB) this._divisor = (this._divisor & 0xff00) | v;
        else this._writeThr(v);
        break;
      case UartReg.IER_DLM:
        if (this._lcr & Lcr.DLAB) this._divisor = (this._divisor & 0x00ff) | (v << 8);
        else this._writeIer(v);
        break;
      case UartReg.IIR_FCR:
        this._writeFcr(v);
        break;
      case UartReg.LCR:
        this._lcr = v;
        break;
      case UartReg.MCR: {
        const wasLoop = this._mcr & Mcr.LOOP;
        this._mcr = v & Mcr.MASK;
        this._updateMsr();
        if (wasLoop && !(this._mcr & Mcr.LOOP)) this._scheduleRx();
        this._updateIrq(false);
        break;
      }
      case UartReg.LSR:
        break; // the datasheet calls writes to LSR "factory test"; ignored
      case UartReg.MSR:
        break; // read-only here
      default:
        this._scr = v;
    }
  }

  private _readRbr(): number {
    if (this._rxCount === 0) return this._rxData[(this._rxHead + UART_FIFO_BYTES - 1) % UART_FIFO_BYTES];
    const v = this._rxData[this._rxHead];
    this._rxHead = (this._rxHead + 1) % UART_FIFO_BYTES;
    this._rxCount--;
    // the next character's errors show in LSR once it reaches the top of the FIFO
    if (this._rxCount > 0) this._lsrErrors |= this._rxFlags[this._rxHead];
    this._rxActivity();
    this._scheduleRx();
    this._updateIrq(false);
    return v;
  }

  private _readLsr(): number {
    let v = this._lsrErrors;
    if (this._rxCount > 0) v |= Lsr.DR;
    if (this._txCount === 0) {
      v |= Lsr.THRE;
      if (!this._tsrFull) v |= Lsr.TEMT;
    }
    if (this._fifoEnabled) {
      for (let i = 0; i < this._rxCount; i++) {
        if (this._rxFlags[(this._rxHead + i) % UART_FIFO_BYTES]) {
          v |= Lsr.RXFIFO_ERROR;
          break;
        }
      }
    }
    if (this._lsrErrors) {
      this._lsrErrors = 0;
      this._updateIrq(false);
    }
    return v;
  }

  private _readIir(): number {
    const id = this._pendingSource();
    if (id === Iir.THRE) {
      // reading IIR with THRE as the source clears that interrupt
      this._thrIpending = false;
      this._updateIrq(false);
    }
    return id | (this._fifoEnabled ? Iir.FIFOS_ENABLED : 0);
  }

  private _writeThr(v: number): void {
    const cap = this._fifoEnabled ? UART_FIFO_BYTES : 1;
    if (this._txCount < cap) {
      this._txData[(this._txHead + this._txCount) % UART_FIFO_BYTES] = v;
      this._txCount++;
    } else if (!this._fifoEnabled) {
      this._txData[this._txHead] = v; // the holding register is overwritten
    } // a full FIFO drops the byte, as the chip does
    this._thrIpending = false;
    this._startTx();
    this._updateIrq(false);
  }

  private _writeIer(v: number): void {
    const changed = (this._ier ^ v) & Ier.MASK;
    this._ier = v & Ier.MASK;
    if (changed & Ier.ETBEI) {
      // enabling ETBEI while THR is empty raises THRE at once (Linux's and Windows' drivers test for it)
      this._thrIpending = (this._ier & Ier.ETBEI) !== 0 && this._txCount === 0;
    }
    this._updateIrq(false);
  }

  private _writeFcr(v: number): void {
    const enable = (v & Fcr.ENABLE) !== 0;
    if (enable !== this._fifoEnabled) {
      // changing the FIFO mode clears both FIFOs (the shift registers are not touched)
      this._clearRx();
      this._clearTx();
      this._fifoEnabled = enable;
    }
    if (enable) {
      // FCR bits other than ENABLE are only programmed while ENABLE is written as 1
      if (v & Fcr.RX_RESET) this._clearRx();
      if (v & Fcr.TX_RESET) this._clearTx();
      this._fcrBits = v & 0xc8;
    }
    this._scheduleRx();
    this._updateIrq(false);
  }

  private _clearRx(): void {
    this._rxHead = this._rxCount = 0;
    this._ctiPending = false;
    this._setTimer(this._ctiTimer, -1);
  }

  private _clearTx(): void {
    this._txHead = this._txCount = 0;
    this._thrIpending = (this._ier & Ier.ETBEI) !== 0;
  }

  // ---- interrupts

  /** The highest-priority pending interrupt as an IIR value. */
  private _pendingSource(): number {
    const ier = this._ier;
    if (ier & Ier.ELSI && this._lsrErrors) return Iir.RLS;
    if (ier & Ier.ERBFI) {
      if (this._fifoEnabled ? this._rxCount >= this._rxTrigger() : this._rxCount > 0) return Iir.RDA;
      if (this._ctiPending) return Iir.CTI;
    }
    if (ier & Ier.ETBEI && this._thrIpending) return Iir.THRE;
    if (ier & Ier.EDSSI && this._msr & Msr.DELTAS) return Iir.MSI;
    return Iir.NO_INT;
  }

  private _rxTrigger(): number {
    return RX_TRIGGER_LEVELS[this._fcrBits >>> Fcr.TRIGGER_SHIFT];
  }

  /** Drive the IRQ line: the chip's INTR output gated by the OUT2 pin (inactive in loopback). */
  private _updateIrq(force: boolean): void {
    const gate = (this._mcr & (Mcr.OUT2 | Mcr.LOOP)) === Mcr.OUT2;
    const level = gate && this._pendingSource() !== Iir.NO_INT ? 1 : 0;
    if (level !== this._irqLevel || force) {
      this._irqLevel = level;
      this._irq.set(level);
    }
  }

  // ---- modem lines

  private _modemInputs(): number {
    if (!(this._mcr & Mcr.LOOP)) return this._hostLines;
    const m = this._mcr;
    return (
      (m & Mcr.RTS ? Msr.CTS : 0) | (m & Mcr.DTR ? Msr.DSR : 0) | (m & Mcr.OUT1 ? Msr.RI : 0) | (m & Mcr.OUT2 ? Msr.DCD : 0)
    );
  }

  private _updateMsr(): void {
    const old = this._msr & Msr.LINES;
    const now = this._modemInputs();
    const diff = old ^ now;
    let d = this._msr & Msr.DELTAS;
    if (diff & Msr.CTS) d |= Msr.DCTS;
    if (diff & Msr.DSR) d |= Msr.DDSR;
    if (diff & Msr.DCD) d |= Msr.DDCD;
    if (old & Msr.RI && !(now & Msr.RI)) d |= Msr.TERI; // trailing edge of ring indicator
    this._msr = now | d;
  }

  // ---- timing

  /** One frame on the wire at the current divisor and line format, capped by maxCharTimeNs. */
  private _charTimeNs(): number {
    const lcr = this._lcr;
    const dataBits = 5 + (lcr & Lcr.WLS);
    const stopBits = lcr & Lcr.STB ? (dataBits === 5 ? 1.5 : 2) : 1;
    const bits = 1 + dataBits + (lcr & Lcr.PEN ? 1 : 0) + stopBits;
    const divisor = this._divisor || DIVISOR_ZERO_AS;
    const ns = Math.round((bits * divisor * SAMPLES_PER_BIT * NS_PER_SECOND) / UART_INPUT_CLOCK_HZ);
    return Math.max(1, Math.min(ns, this._maxCharTimeNs));
  }

  /** Guest time now: the event's own time inside a timer callback, so results do not depend on slice length. */
  private _now(): number {
    return this._eventNs >= 0 ? this._eventNs : this._clock.nowNs;
  }

  private _atDeadline(deadlineNs: number, fn: () => void): void {
    this._eventNs = deadlineNs >= 0 ? deadlineNs : this._clock.nowNs;
    fn();
    this._eventNs = -1;
  }

  private _setTimer(t: Timer, deadlineNs: number): void {
    if (t === this._txTimer) this._txDeadlineNs = deadlineNs;
    else if (t === this._rxTimer) this._rxDeadlineNs = deadlineNs;
    else this._ctiDeadlineNs = deadlineNs;
    if (deadlineNs < 0) this._clock.disarm(t);
    else this._clock.arm(t, deadlineNs);
  }

  // ---- transmitter

  /** Move the next byte from THR/FIFO into an idle shift register. */
  private _startTx(): void {
    if (this._tsrFull || this._txCount === 0) return;
    this._tsr = this._txData[this._txHead];
    this._txHead = (this._txHead + 1) % UART_FIFO_BYTES;
    this._txCount--;
    this._tsrFull = true;
    if (this._txCount === 0) this._thrIpending = true;
    this._setTimer(this._txTimer, this._now() + this._charTimeNs());
  }

  /** The stop bit of the byte in the shift register has gone out. */
  private _txDone(): void {
    this._txDeadlineNs = -1;
    this._tsrFull = false;
    const byte = this._tsr & ((1 << (5 + (this._lcr & Lcr.WLS))) - 1);
    if (this._mcr & Mcr.LOOP) this._rxPush(byte, 0);
    else this._sink.write(byte);
    this._startTx();
    this._updateIrq(false);
  }

  // ---- receiver

  private _enqueueHost(v: number): void {
    if (this.pendingInput >= UART_HOST_QUEUE_MAX) {
      this.droppedInput++;
      return;
    }
    if (this._hostHead > 4096 && this._hostHead * 2 > this._hostQueue.length) {
      this._hostQueue = this._hostQueue.slice(this._hostHead);
      this._hostHead = 0;
    }
    this._hostQueue.push(v);
  }

  /** Start receiving the next host byte if one waits, the receiver is idle and the FIFO has room. */
  private _scheduleRx(): void {
    if (this._rxDeadlineNs >= 0 || this.pendingInput === 0 || this._mcr & Mcr.LOOP) return;
    if (this._rxCount >= (this._fifoEnabled ? UART_FIFO_BYTES : 1)) return;
    this._setTimer(this._rxTimer, this._now() + this._charTimeNs());
  }

  /** A host byte has finished arriving. */
  private _rxArrive(): void {
    this._rxDeadlineNs = -1;
    if (this._mcr & Mcr.LOOP || this.pendingInput === 0) return;
    if (this._rxCount >= (this._fifoEnabled ? UART_FIFO_BYTES : 1)) return; // waits for room; _readRbr reschedules
    const v = this._hostQueue[this._hostHead++];
    if (this._hostHead === this._hostQueue.length) {
      this._hostQueue = [];
      this._hostHead = 0;
    }
    if (v === BREAK_MARK) this._rxPush(0, Lsr.BI);
    else this._rxPush(v & 0xff, 0);
    this._scheduleRx();
    this._updateIrq(false);
  }

  /** A character has been assembled by the receiver: into the FIFO, or an overrun. */
  private _rxPush(v: number, flags: number): void {
    const cap = this._fifoEnabled ? UART_FIFO_BYTES : 1;
    if (this._rxCount >= cap) {
      this._lsrErrors |= Lsr.OE;
      if (!this._fifoEnabled) {
        // 16450 mode: the new character overwrites RBR
        this._rxData[this._rxHead] = v;
        this._rxFlags[this._rxHead] = flags;
        this._lsrErrors |= flags;
      } // FIFO mode: the character in the shift register is lost, the FIFO is kept
      return;
    }
    const slot = (this._rxHead + this._rxCount) % UART_FIFO_BYTES;
    this._rxData[slot] = v;
    this._rxFlags[slot] = flags;
    this._rxCount++;
    if (this._rxCount === 1) this._lsrErrors |= flags;
    this._rxActivity();
  }

  /** A character entered or left the receive FIFO: restart the character timeout. */
  private _rxActivity(): void {
    this._ctiPending = false;
    if (this._fifoEnabled && this._rxCount > 0) {
      this._setTimer(this._ctiTimer, this._now() + CTI_CHARACTERS * this._charTimeNs());
    } else {
      this._setTimer(this._ctiTimer, -1);
    }
  }

  private _ctiExpire(): void {
    this._ctiDeadlineNs = -1;
    if (this._fifoEnabled && this._rxCount > 0) this._ctiPending = true;
    this._updateIrq(false);
  }

  // ---- state

  saveState(): Uart16550State {
    return saveFields(Uart16550.stateSchema.fields, this) as unknown as Uart16550State;
  }

  loadState(s: Uart16550State): void {
    loadChecked(this.id, Uart16550.stateSchema, this, s);
  }
}

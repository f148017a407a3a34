/**
 * I/O APIC: an Intel 82093AA-style interrupt router with 24 input pins, each
 * with a redirection entry that turns a pin's assertion into an interrupt
 * message to the local APIC.
 *
 * References: Intel 82093AA I/O Advanced Programmable Interrupt Controller
 * datasheet (order 290566): 3.0 register description (IOREGSEL at 0x00,
 * IOWIN at 0x10; IOAPICID, IOAPICVER, IOAPICARB, IOREDTBL[0:23]). Behaviour
 * guests rely on was compared with QEMU's hw/intc/ioapic.c (version 0x11, 24
 * pins, the register window repeating every 256 bytes).
 *
 * Modelling choices:
 * - Pins carry the asserted state of their source (1 = requesting), not the
 *   electrical level, so the polarity bit is stored and read back but does
 *   not invert anything. QEMU does the same: its devices, like ours, signal
 *   active-high.
 * - Edge-triggered pins latch a request on each rising edge; a request that
 *   arrives while the pin is masked is delivered when it is unmasked, as QEMU
 *   does (the 82093AA would drop it). Linux masks edge interrupts only
 *   briefly and relies on them not being lost.
 * - Level-triggered pins deliver while asserted, set Remote IRR when the
 *   local APIC accepts, and deliver again after the local APIC's EOI for
 *   that vector if still asserted. Switching a pin to edge clears Remote IRR
 *   (as QEMU does; Linux uses this to recover a stuck pin).
 * - There is one local APIC, so delivery is immediate (delivery status reads
 *   0) and lowest-priority delivery goes to it when it matches the
 *   destination. ExtINT asks the 8259 pair for the vector (INTA) and delivers
 *   it as a fixed interrupt, as QEMU does.
 */
import type { IrqLine } from '../../bus/irq.js';
import type { MmioHandlers } from '../../bus/memory.js';
import { defineState, loadChecked, saveFields, u8, u32, u32s } from '../../state/schema.js';
import { ApicBits, DeliveryMode } from './lapic.js';

/** Default physical address of the I/O APIC (what the MADT and MP tables announce). */
export const IOAPIC_DEFAULT_BASE = 0xfec00000;
export const IOAPIC_MMIO_BYTES = 4096;
/** Input pins (redirection entries). */
export const IOAPIC_PINS = 24;
/** 82093AA version. */
const IOAPIC_VERSION = 0x11;

/** Register window offsets (repeating every 256 bytes). */
export const enum IoapicMmio {
  IOREGSEL = 0x00,
  IOWIN = 0x10,
}

/** Indirect registers selected by IOREGSEL. */
export const enum IoapicReg {
  ID = 0x00,
  VERSION = 0x01,
  ARB = 0x02,
  REDTBL = 0x10, // entry n: low dword at 0x10 + 2n, high dword at 0x11 + 2n
}

/** Writable bits of a redirection entry's low dword (delivery status and Remote IRR are read-only). */
const REDTBL_LO_WRITE = 0x1afff;
const REDTBL_HI_WRITE = 0xff000000;
/** IOAPICID bits 27:24. */
const ID_MASK = 0x0f000000;

/** Saved state of the I/O APIC. */
export interface IoapicState {
  [field: string]: number | Uint32Array;
  ioregsel: number;
  id: number;
  /** Redirection entries, low dwords (with Remote IRR). */
  redLo: Uint32Array;
  redHi: Uint32Array;
  /** Pin levels (bit n = pin n asserted). */
  levels: number;
  /** Edge requests latched and not yet delivered. */
  pending: number;
}

/** What the board connects the I/O APIC to. */
export interface IoapicDeps {
  /** An interrupt message on the APIC bus to the local APIC. */
  deliver: (vector: number, mode: number, level: boolean, logical: boolean, dest: number) => void;
  /** INTA to the 8259 pair, for ExtINT entries. */
  extIntAcknowledge: () => number;
}

/** The I/O APIC. Devices get pins from `input(pin)`; the board maps `mmio` at 0xFEC00000. */
export class IoApic {
  /** The register select, ID, redirection table and the pins' levels and latched edges; loading sends no message. */
  static readonly stateSchema = defineState<IoApic>(
    'ioapic',
    1,
    {
      ioregsel: u8.at('_ioregsel'),
      id: u32.at('_apicId'),
      redLo: u32s(IOAPIC_PINS).at('_redLo'),
      redHi: u32s(IOAPIC_PINS).at('_redHi'),
      levels: u32.at('_levels').range(0, (1 << IOAPIC_PINS) - 1),
      pending: u32.at('_pending').range(0, (1 << IOAPIC_PINS) - 1),
    },
    {
      transient: ['mmio', '_deliver', '_extInt', '_lines'],
      postLoad: (io) => {
        io._apicId = (io._apicId & ID_MASK) >>> 0;
        for (let n = 0; n < IOAPIC_PINS; n++) {
          io._redLo[n] &= REDTBL_LO_WRITE | ApicBits.REMOTE_IRR;
          io._redHi[n] = (io._redHi[n] & REDTBL_HI_WRITE) >>> 0;
        }
      },
    },
  );
  readonly id: string;
  readonly mmio: MmioHandlers;
  private readonly _deliver: IoapicDeps['deliver'];
  private readonly _extInt: () => number;
  private readonly _lines: IrqLine[] = [];
  private _ioregsel = 0;
  private _apicId = 0;
  private readonly _redLo = new Uint32Array(IOAPIC_PINS);
  private readonly _redHi = new Uint32Array(IOAPIC_PINS);
  private _levels = 0;
  private _pending = 0;

  constructor(id: string, deps: IoapicDeps) {
    this.id = id;
    this._deliver = deps.deliver;
    this._extInt = deps.extIntAcknowledge;
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const n = pin;
      this._lines.push({ set: (level: number) => this._setPin(n, level !== 0) });
    }
    this.mmio = {
      read8: (a) => (this._read(a & ~3) >>> ((a & 3) * 8)) & 0xff,
      read16: (a) => (this._read(a & ~3) >>> ((a & 2) * 8)) & 0xffff,
      read32: (a) => this._read(a),
      write8: (a, v) => {
        if ((a & 0xff) === IoapicMmio.IOREGSEL) this._ioregsel = v & 0xff; // IOREGSEL takes byte writes
      },
      write16: () => {},
      write32: (a, v) => this._write(a, v),
    };
    this.reset();
  }

  /** Pin `pin` (0..23). */
  input(pin: number): IrqLine {
    if (!Number.isInteger(pin) || pin < 0 || pin >= IOAPIC_PINS) throw new RangeError(`ioapic: no pin ${pin}`);
    return this._lines[pin];
  }

  /** Reset: every entry masked, ID 0 (the pins keep their levels: they are inputs). */
  reset(): void {
    this._ioregsel = 0;
    this._apicId = 0;
    this._redLo.fill(ApicBits.MASKED);
    this._redHi.fill(0);
    this._pending = 0;
  }

  /** The local APIC's EOI for a level-triggered `vector`: clear Remote IRR of the pins using it. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this._redLo[pin];
      if ((lo & ApicBits.REMOTE_IRR) !== 0 && (lo & ApicBits.VECTOR) === vector) {
        this._redLo[pin] = lo & ~ApicBits.REMOTE_IRR;
        this._service(pin);
      }
    }
  }

  private _setPin(pin: number, level: boolean): void {
    const mask = 1 << pin;
    const was = (this._levels & mask) !== 0;
    if (level) this._levels |= mask;
    else this._levels &= ~mask;
    if (level && !was && (this._redLo[pin] & ApicBits.LEVEL) === 0) this._pending |= mask;
    if (level) this._service(pin);
  }

  /** Deliver pin `pin` if it requests and may be delivered now. */
  private _service(pin: number): void {
    const lo = this._redLo[pin];
    if (lo & ApicBits.MASKED) return;
    const mask = 1 << pin;
    const level = (lo & ApicBits.LEVEL) !== 0;
    if (level) {
      if ((this._levels & mask) === 0 || (lo & ApicBits.REMOTE_IRR) !== 0) return;
    } else {
      if ((this._pending & mask) === 0) return;
      this._pending &= ~mask;
    }
    let mode = (lo >>> ApicBits.DELIVERY_SHIFT) & 7;
    let vector = lo & ApicBits.VECTOR;
    if (mode === DeliveryMode.EXTINT) {
      vector = this._extInt() & 0xff;
      mode = DeliveryMode.FIXED;
    }
    // Remote IRR: the local APIC has accepted a level interrupt and owes an EOI (fixed and lowest priority only)
    if (level && (mode === DeliveryMode.FIXED || mode === DeliveryMode.LOWEST)) this._redLo[pin] = lo | ApicBits.REMOTE_IRR;
    this._deliver(vector, mode, level, (lo & ApicBits.DEST_LOGICAL) !== 0, this._redHi[pin] >>> 24);
  }

  private _readReg(reg: number): number {
    switch (reg) {
      case IoapicReg.ID:
      case IoapicReg.ARB: // the arbitration ID is loaded from the ID (QEMU reads both the same)
        return this._apicId;
      case IoapicReg.VERSION:
        return IOAPIC_VERSION | ((IOAPIC_PINS - 1) << 16);
      default:
        break;
    }
    const n = (reg - IoapicReg.REDTBL) >>> 1;
    if (reg < IoapicReg.REDTBL || n >= IOAPIC_PINS) return 0;
    return (reg & 1 ? this._redHi[n] : this._redLo[n]) | 0;
  }

  private _writeReg(reg: number, v: number): void {
    if (reg === IoapicReg.ID) {
      this._apicId = v & ID_MASK;
      return;
    }
    const n = (reg - IoapicReg.REDTBL) >>> 1;
    if (reg < IoapicReg.REDTBL || n >= IOAPIC_PINS) return; // version, arbitration and unused registers are read-only
    if (reg & 1) {
      this._redHi[n] = v & REDTBL_HI_WRITE;
      return;
    }
    let lo = (this._redLo[n] & ApicBits.REMOTE_IRR) | (v & REDTBL_LO_WRITE);
    if ((lo & ApicBits.LEVEL) === 0) lo &= ~ApicBits.REMOTE_IRR;
    this._redLo[n] = lo >>> 0;
    this._service(n);
  }

  private _read(addr: number): number {
    switch (addr & 0xff) {
      case IoapicMmio.IOREGSEL:
        return this._ioregsel;
      case IoapicMmio.IOWIN:
        return this._readReg(this._ioregsel);
      default:
        return 0;
    }
  }

  private _write(addr: number, v: number): void {
    switch (addr & 0xff) {
      case IoapicMmio.IOREGSEL:
        this._ioregsel = v & 0xff;
        break;
      case IoapicMmio.IOWIN:
        this._writeReg(this._ioregsel, v >>> 0);
        break;
      default:
        break;
    }
  }

  saveState(): IoapicState {
    return saveFields(IoApic.stateSchema.fields, this) as unknown as IoapicState;
  }

  /** Load a saved state (checked first: a bad one throws StateError and changes nothing). No message is sent. */
  loadState(s: IoapicState): void {
    loadChecked(this.id, IoApic.stateSchema, this, s);
  }
}

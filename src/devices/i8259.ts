/**
 * 8259A PIC: the PC/AT pair of programmable interrupt controllers (master at
 * 0x20/0x21, slave at 0xA0/0xA1 cascaded on master IR2) and the PIIX3 edge/level
 * control registers (ELCR, 0x4D0/0x4D1).
 *
 * References: Intel 8259A Programmable Interrupt Controller datasheet (order
 * 231468): ICW1-4, OCW1-3, priority rotation, special mask mode, poll mode,
 * spurious IR7; Intel 82371SB (PIIX3) datasheet, section "ELCR1/ELCR2" (IRQ0,1,2,8,13
 * are always edge-triggered). Behaviour guests rely on was checked against
 * QEMU's hw/intc/i8259.c.
 *
 * Modelling choices:
 * - Edge-triggered inputs latch IRR on a 0 -> 1 transition, and the latch holds
 *   until the interrupt is acknowledged (as QEMU does), so a short pulse from a
 *   device that raises and lowers its line at once is never lost. A real 8259A
 *   would report a spurious IR7 if the line dropped before INTA.
 * - Level-triggered inputs (ELCR bit set, or LTIM in ICW1) make IRR follow the
 *   line.
 * - The slave's INT output drives master IR2 as an edge. After an INTA cycle
 *   that leaves the slave still requesting (auto-EOI on the slave), master IR2
 *   is latched again, as the slave's INT re-asserting would.
 * - The ISA IRQ2 pin is wired to IRQ9 on the PC/AT, so `input(2)` is IRQ9.
 */
import { assert } from '../base/assert.js';
import type { IrqLine } from '../bus/irq.js';
import type { IoPorts } from '../bus/ports.js';
import { bool, defineState, loadChecked, saveFields, struct, u8 } from '../state/schema.js';

/** I/O ports of the PC/AT PIC pair and the PIIX3 ELCR. */
export const enum PicPort {
  MASTER_CMD = 0x20,
  MASTER_DATA = 0x21,
  SLAVE_CMD = 0xa0,
  SLAVE_DATA = 0xa1,
  ELCR1 = 0x4d0,
  ELCR2 = 0x4d1,
}

/** Bits of ICW1 (written to the command port with bit 4 set). */
export const enum Icw1 {
  IC4 = 0x01, // ICW4 needed
  SNGL = 0x02, // single mode (no ICW3)
  ADI = 0x04, // call address interval (8080 mode only; ignored)
  LTIM = 0x08, // level-triggered mode
  INIT = 0x10, // this byte is ICW1
}

/** Bits of ICW4. */
export const enum Icw4 {
  UPM = 0x01, // 8086 mode (8080 mode is not modelled)
  AEOI = 0x02, // automatic end of interrupt
  MS = 0x04, // buffered mode master/slave (ignored)
  BUF = 0x08, // buffered mode (ignored)
  SFNM = 0x10, // special fully nested mode
}

/** Bits of OCW3 (command port, bits 4:3 = 01). */
export const enum Ocw3 {
  RIS = 0x01, // read ISR (1) or IRR (0)
  RR = 0x02, // read register command
  P = 0x04, // poll command
  SELECT = 0x08, // marks the byte as OCW3
  SMM = 0x20, // special mask mode value
  ESMM = 0x40, // enable the SMM bit
}

/** OCW2 commands (bits 7:5) for the command port with bits 4:3 = 00. */
export const enum Ocw2 {
  ROTATE_AEOI_CLEAR = 0,
  EOI = 1,
  NOP = 2,
  SPECIFIC_EOI = 3,
  ROTATE_AEOI_SET = 4,
  ROTATE_EOI = 5,
  SET_PRIORITY = 6,
  ROTATE_SPECIFIC_EOI = 7,
}

/** ICW sequence position: what the data port expects next. */
const enum InitState {
  READY = 0, // OCW1 (IMR)
  ICW2 = 1,
  ICW3 = 2,
  ICW4 = 3,
}

/** Master input the slave's INT is wired to. */
const CASCADE_IRQ = 2;
/** On the PC/AT the ISA IRQ2 pin goes to the slave's IR1 (IRQ9). */
const ISA_IRQ2_ALIAS = 9;
/** IR7 is reported when nothing is pending at INTA (spurious interrupt). */
const SPURIOUS_IRQ = 7;
/** "No request" from the priority resolver. */
const NO_PRIORITY = 8;
/** ICW2 holds T7-T3 of the vector; T2-T0 come from the IR number. */
const VECTOR_BASE_MASK = 0xf8;
/** PIIX3: IRQ0, 1 and 2 are always edge-triggered (ELCR1 bits 2:0 read 0). */
const ELCR1_MASK = 0xf8;
/** PIIX3: IRQ8 and IRQ13 are always edge-triggered (ELCR2 bits 0 and 5 read 0). */
const ELCR2_MASK = 0xde;

/** The registers of one 8259A. */
export interface I8259ChipState {
  [field: string]: number | boolean;
  irr: number;
  isr: number;
  imr: number;
  /** Input line levels as last seen (for edge detection). */
  lines: number;
  /** Priority rotation: IR number (priorityAdd + 0) & 7 has the highest priority. */
  priorityAdd: number;
  vectorBase: number;
  initState: number;
  readIsr: boolean;
  poll: boolean;
  specialMask: boolean;
  autoEoi: boolean;
  rotateOnAutoEoi: boolean;
  specialFullyNested: boolean;
  icw4Needed: boolean;
  singleMode: boolean;
  levelTriggered: boolean;
  elcr: number;
}

/** Saved state of the pair. */
export interface I8259PairState {
  [field: string]: I8259ChipState | boolean;
  master: I8259ChipState;
  slave: I8259ChipState;
  intOut: boolean;
}

/** Dependencies the board passes to the PIC pair. */
export interface I8259Deps {
  ports: IoPorts;
  /** Drives the CPU's INTR pin. Called whenever the master's INT output changes (and after loadState). */
  onIntr: (level: boolean) => void;
}

class Chip {
  irr = 0;
  isr = 0;
  imr = 0;
  lines = 0;
  priorityAdd = 0;
  vectorBase = 0;
  initState = InitState.READY;
  readIsr = false;
  poll = false;
  specialMask = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialFullyNested = false;
  icw4Needed = false;
  singleMode = false;
  levelTriggered = false;
  elcr = 0;

  constructor(
    readonly isMaster: boolean,
    readonly elcrMask: number,
  ) {}

  /** Power-on / ICW1 reset of the programmable state. Input levels and ELCR are kept. */
  initReset(): void {
    this.irr &= this._levelMask(); // edge latches reset; level inputs still request
    this.isr = 0;
    this.imr = 0;
    this.priorityAdd = 0;
    this.vectorBase = 0;
    this.initState = InitState.READY;
    this.readIsr = false;
    this.poll = false;
    this.specialMask = false;
    this.autoEoi = false;
    this.rotateOnAutoEoi = false;
    this.specialFullyNested = false;
    this.icw4Needed = false;
    this.singleMode = false;
    this.levelTriggered = false;
  }

  private _levelMask(): number {
    return this.levelTriggered ? 0xff : this.elcr;
  }

  setInput(irq: number, level: boolean): void {
    const mask = 1 << irq;
    if (this._levelMask() & mask) {
      if (level) this.irr |= mask;
      else this.irr &= ~mask;
    } else if (level && (this.lines & mask) === 0) {
      this.irr |= mask;
    }
    if (level) this.lines |= mask;
    else this.lines &= ~mask;
  }

  /** Level inputs follow their line again (after ELCR or LTIM changes). */
  resyncLevelInputs(): void {
    const lm = this._levelMask();
    this.irr = (this.irr & ~lm) | (this.lines & lm);
  }

  /** Priority (0 = highest) of the highest-priority bit in `mask`, or NO_PRIORITY. */
  private _priority(mask: number): number {
    if (mask === 0) return NO_PRIORITY;
    let p = 0;
    while ((mask & (1 << ((p + this.priorityAdd) & 7))) === 0) p++;
    return p;
  }

  /** The IR that would be delivered now, or -1. */
  pending(): number {
    const p = this._priority(this.irr & ~this.imr);
    if (p === NO_PRIORITY) return -1;
    let inService = this.isr;
    // Special mask mode: masked in-service levels do not block lower priorities.
    if (this.specialMask) inService &= ~this.imr;
    // Special fully nested mode: the slave may interrupt while its cascade input is in service.
    if (this.specialFullyNested && this.isMaster) inService &= ~(1 << CASCADE_IRQ);
    return p < this._priority(inService) ? (p + this.priorityAdd) & 7 : -1;
  }

  /** INTA: move `irq` from IRR to ISR (or rotate in auto-EOI mode). */
  intack(irq: number): void {
    const mask = 1 << irq;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
    } else {
      this.isr |= mask;
    }
    if ((this._levelMask() & mask) === 0) this.irr &= ~mask;
  }

  writeCommand(v: number): void {
    if (v & Icw1.INIT) {
      this.initReset();
      this.initState = InitState.ICW2;
      this.icw4Needed = (v & Icw1.IC4) !== 0;
      this.singleMode = (v & Icw1.SNGL) !== 0;
      this.levelTriggered = (v & Icw1.LTIM) !== 0;
      this.resyncLevelInputs();
      return;
    }
    if (v & Ocw3.SELECT) {
      if (v & Ocw3.P) this.poll = true;
      if (v & Ocw3.RR) this.readIsr = (v & Ocw3.RIS) !== 0;
      if (v & Ocw3.ESMM) this.specialMask = (v & Ocw3.SMM) !== 0;
      return;
    }
    const irqField = v & 7;
    switch (v >>> 5) {
      case Ocw2.ROTATE_AEOI_CLEAR:
        this.rotateOnAutoEoi = false;
        break;
      case Ocw2.ROTATE_AEOI_SET:
        this.rotateOnAutoEoi = true;
        break;
      case Ocw2.EOI:
      case Ocw2.ROTATE_EOI: {
        const p = this._priority(this.isr);
        if (p !== NO_PRIORITY) {
          const irq = (p + this.priorityAdd) & 7;
          this.isr &= ~(1 << irq);
          if (v >>> 5 === Ocw2.ROTATE_EOI) this.priorityAdd = (irq + 1) & 7;
        }
        break;
      }
      case Ocw2.SPECIFIC_EOI:
        this.isr &= ~(1 << irqField);
        break;
      case Ocw2.ROTATE_SPECIFIC_EOI:
        this.isr &= ~(1 << irqField);
        this.priorityAdd = (irqField + 1) & 7;
        break;
      case Ocw2.SET_PRIORITY:
        this.priorityAdd = (irqField + 1) & 7; // IR field becomes the lowest priority
        break;
      default: // Ocw2.NOP
        break;
    }
  }

  writeData(v: number): void {
    switch (this.initState) {
      case InitState.ICW2:
        this.vectorBase = v & VECTOR_BASE_MASK;
        this.initState = this.singleMode ? (this.icw4Needed ? InitState.ICW4 : InitState.READY) : InitState.ICW3;
        break;
      case InitState.ICW3: // cascade wiring is fixed on the PC
        this.initState = this.icw4Needed ? InitState.ICW4 : InitState.READY;
        break;
      case InitState.ICW4:
        this.autoEoi = (v & Icw4.AEOI) !== 0;
        this.specialFullyNested = (v & Icw4.SFNM) !== 0;
        this.initState = InitState.READY;
        break;
      default:
        this.imr = v;
        break;
    }
  }
}

/** One 8259A's registers; its wiring (master or slave, which ELCR bits exist) is not state. */
const CHIP_FIELDS = {
  irr: u8,
  isr: u8,
  imr: u8,
  lines: u8,
  priorityAdd: u8.range(0, 7),
  vectorBase: u8,
  initState: u8.range(InitState.READY, InitState.ICW4),
  readIsr: bool,
  poll: bool,
  specialMask: bool,
  autoEoi: bool,
  rotateOnAutoEoi: bool,
  specialFullyNested: bool,
  icw4Needed: bool,
  singleMode: bool,
  levelTriggered: bool,
  elcr: u8,
};

/**
 * The cascaded 8259A pair of a PC/AT with PIIX3 ELCR. Devices get their lines
 * from `input(irq)`; the CPU calls `acknowledge()` on INTA (this is the
 * `InterruptController` the board hands the CPU).
 */
export class I8259Pair {
  /** Both chips' registers and the INT output; loading recomputes the cascade and drives INT. */
  static readonly stateSchema = defineState<I8259Pair>(
    'i8259',
    1,
    { master: struct(CHIP_FIELDS).at('_master'), slave: struct(CHIP_FIELDS).at('_slave'), intOut: bool.at('_intOut') },
    {
      transient: ['_lines', '_master.isMaster', '_master.elcrMask', '_slave.isMaster', '_slave.elcrMask'],
      postLoad: (p) => {
        for (const c of [p._master, p._slave]) {
          c.vectorBase &= VECTOR_BASE_MASK;
          c.elcr &= c.elcrMask;
        }
        p._update();
        p._onIntr(p._intOut);
      },
    },
  );
  readonly id: string;
  private readonly _master = new Chip(true, ELCR1_MASK);
  private readonly _slave = new Chip(false, ELCR2_MASK);
  private readonly _onIntr: (level: boolean) => void;
  private readonly _lines: IrqLine[] = [];
  private _intOut = false;

  constructor(id: string, deps: I8259Deps) {
    this.id = id;
    this._onIntr = deps.onIntr;
    for (let irq = 0; irq < 16; irq++) {
      const n = irq;
      this._lines.push({ set: (level: number) => this._setIrq(n, level !== 0) });
    }
    const cmd = (chip: Chip) => ({
      read8: (port: number) => this._read(chip, port),
      write8: (port: number, v: number) => this._write(chip, port, v),
    });
    deps.ports.register(id, PicPort.MASTER_CMD, 2, cmd(this._master));
    deps.ports.register(id, PicPort.SLAVE_CMD, 2, cmd(this._slave));
    deps.ports.register(id, PicPort.ELCR1, 2, {
      read8: (port) => (port === PicPort.ELCR1 ? this._master : this._slave).elcr,
      write8: (port, v) => {
        const chip = port === PicPort.ELCR1 ? this._master : this._slave;
        chip.elcr = v & chip.elcrMask;
        chip.resyncLevelInputs();
        this._update();
      },
    });
  }

  /** The line for ISA IRQ `irq` (0..15). IRQ2 is the cascade, so `input(2)` is IRQ9 as on the ISA bus. */
  input(irq: number): IrqLine {
    assert(Number.isInteger(irq) && irq >= 0 && irq < 16, `i8259: no IRQ ${irq}`);
    return this._lines[irq === CASCADE_IRQ ? ISA_IRQ2_ALIAS : irq];
  }

  /** INTA cycle: the vector of the highest-priority request, now in service. Spurious requests give IR7's vector. */
  acknowledge(): number {
    const m = this._master;
    const s = this._slave;
    const irq = m.pending();
    let vector: number;
    if (irq < 0) {
      vector = m.vectorBase + SPURIOUS_IRQ;
    } else if (irq === CASCADE_IRQ && !m.singleMode) {
      let irq2 = s.pending();
      if (irq2 >= 0) s.intack(irq2);
      else irq2 = SPURIOUS_IRQ; // the slave's request went away: spurious IRQ15
      vector = s.vectorBase + irq2;
      m.intack(irq);
      this._cascade();
      // The slave still requests (auto-EOI on the slave): its INT re-asserts after INTA.
      if (s.pending() >= 0) m.irr |= 1 << CASCADE_IRQ;
    } else {
      vector = m.vectorBase + irq;
      m.intack(irq);
    }
    this._update();
    return vector;
  }

  /** Whether the master's INT output is asserted. */
  get intOut(): boolean {
    return this._intOut;
  }

  /** Machine reset: both chips back to their power-on state (ELCR is cleared, as on PIIX3 reset). */
  reset(): void {
    for (const c of [this._master, this._slave]) {
      c.initReset();
      c.elcr = 0;
      c.resyncLevelInputs();
    }
    this._update();
  }

  saveState(): I8259PairState {
    return saveFields(I8259Pair.stateSchema.fields, this) as unknown as I8259PairState;
  }

  loadState(st: I8259PairState): void {
    loadChecked(this.id, I8259Pair.stateSchema, this, st);
  }

  private _setIrq(irq: number, level: boolean): void {
    if (irq < 8) this._master.setInput(irq, level);
    else this._slave.setInput(irq - 8, level);
    this._update();
  }

  /** Slave INT -> master IR2. */
  private _cascade(): void {
    this._master.setInput(CASCADE_IRQ, this._slave.pending() >= 0);
  }

  private _update(): void {
    this._cascade();
    const out = this._master.pending() >= 0;
    if (out !== this._intOut) {
      this._intOut = out;
      this._onIntr(out);
    }
  }

  private _read(chip: Chip, port: number): number {
    if (chip.poll) {
      // Poll command: the next read returns 0x80 | IR of the highest request (acknowledged), or 0.
      chip.poll = false;
      const irq = chip.pending();
      if (irq < 0) return 0;
      chip.intack(irq);
      this._update();
      return 0x80 | irq;
    }
    if ((port & 1) === 0) return chip.readIsr ? chip.isr : chip.irr;
    return chip.imr;
  }

  private _write(chip: Chip, port: number, v: number): void {
    v &= 0xff;
    if ((port & 1) === 0) chip.writeCommand(v);
    else chip.writeData(v);
    this._update();
  }
}

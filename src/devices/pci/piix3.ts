/**
 * Intel 82371SB PIIX3: function 0, the PCI-to-ISA bridge at 00:01.0
 * (8086:7000), and function 1, the IDE controller's PCI shell at 00:01.1
 * (8086:7010).
 *
 * Reference: Intel 82371FB (PIIX) and 82371SB (PIIX3) PCI ISA IDE Xcelerator
 * datasheet (order 290550-002): 2.2 function 0 configuration (PIRQRC[A:D] at
 * 60h-63h), 4.1.x reset control register (RC, I/O 0CF9h), 2.3 function 1
 * (IDETIM at 40h/42h, BMIBA at 20h). Reset values follow QEMU hw/isa/piix.c
 * and hw/ide/piix.c, which match the datasheet.
 *
 * PIRQ routing: PIRQRCx bit 7 (IRQROUTEN, active low: 1 = not routed) and
 * bits 3:0 (the ISA IRQ). A PIRQ routed to IRQ n drives that ISA line; several
 * PIRQs on one IRQ are ORed. Reserved IRQ numbers (0-2, 8, 13) route nowhere.
 *
 * RC (0CF9h): bit 1 SRST selects a hard (system) reset, bit 2 RCPU resets;
 * like QEMU, any write with RCPU set requests the reset (onReset(hard)).
 */
import type { IrqLine } from '../../bus/irq.js';
import type { IoPorts } from '../../bus/ports.js';
import { saveFields, loadChecked, u8, u16 } from '../../state/schema.js';
import { PciDevice, PciCommand, PciStatus, PCI_HEADER_MULTIFUNCTION, type PciDeviceState, pciState, rangesOverlap } from './device.js';
import type { PirqRouter } from './host.js';

export const PIIX3_VENDOR_ID = 0x8086;
export const PIIX3_ISA_DEVICE_ID = 0x7000;
export const PIIX3_IDE_DEVICE_ID = 0x7010;
/** Class 06h/01h: PCI-to-ISA bridge. */
const CLASS_ISA_BRIDGE = 0x060100;
/** Class 01h/01h, programming interface 80h: IDE, bus-master capable, both channels in compatibility mode. */
const CLASS_IDE_LEGACY_BM = 0x010180;

export const enum Piix3Reg {
  IORT = 0x4c,
  XBCS = 0x4e,
  PIRQRC = 0x60,
  TOM = 0x69,
  MBIRQ0 = 0x70,
  MBDMA0 = 0x76,
  MBDMA1 = 0x77,
  PCSC = 0x78,
  APICBASE = 0x80,
  DLC = 0x82,
  SMICNTL = 0xa0,
  SMIEN = 0xa2,
  SEE = 0xa4,
  FTMR = 0xa8,
  SMIREQ = 0xaa,
  CTLTMR = 0xac,
  CTHTMR = 0xae,
}

export const enum Pirq {
  /** IRQROUTEN#: 1 = this PIRQ is not routed. */
  DISABLE = 0x80,
  IRQ_MASK = 0x0f,
}

export const enum Rc {
  PORT = 0xcf9,
  SRST = 0x02,
  RCPU = 0x04,
}

/** ISA IRQs a PIRQ may be steered to (PIIX3 2.2.13: 3-7, 9-12, 14, 15). */
const PIRQ_VALID_IRQS = 0xdef8;
const ISA_IRQ_COUNT = 16;
const PIRQ_COUNT = 4;

/** Power-on values of function 0's device-specific registers (datasheet = QEMU piix_reset). */
const ISA_RESET_VALUES: readonly [number, number][] = [
  [Piix3Reg.IORT, 0x4d],
  [Piix3Reg.XBCS, 0x03],
  [Piix3Reg.PIRQRC, Pirq.DISABLE],
  [Piix3Reg.PIRQRC + 1, Pirq.DISABLE],
  [Piix3Reg.PIRQRC + 2, Pirq.DISABLE],
  [Piix3Reg.PIRQRC + 3, Pirq.DISABLE],
  [Piix3Reg.TOM, 0x02],
  [Piix3Reg.MBIRQ0, 0x80],
  [Piix3Reg.MBDMA0, 0x0c],
  [Piix3Reg.MBDMA1, 0x0c],
  [Piix3Reg.PCSC, 0x02],
  [Piix3Reg.SMICNTL, 0x08],
  [Piix3Reg.FTMR, 0x0f],
];

export interface Piix3State extends PciDeviceState {
  /** PIRQA-D input levels, bit n = PIRQn. */
  pirqLevels: number;
  /** ISA IRQ levels this bridge drives, bit n = IRQn. */
  irqLevels: number;
  rc: number;
}

/** PIIX3 function 0: PCI-to-ISA bridge with PIRQ steering and the reset control register. */
export class Piix3 extends PciDevice implements PirqRouter {
  /** Configuration space, the PIRQ input levels, the ISA IRQ levels it drives and the reset control register. */
  static override readonly stateSchema = pciState<Piix3>('piix3', 1, {
    pirqLevels: u8.at('_pirqLevels').range(0, (1 << PIRQ_COUNT) - 1),
    irqLevels: u16.at('_irqLevels'),
    rc: u8.at('_rc').range(0, Rc.SRST),
  }, {
    transient: ['onReset', '_irqs'],
    postLoad: (p) => {
      p._rc &= Rc.SRST;
    },
  });
  /** Board hook: RC requested a reset (hard = SRST set: full system reset). */
  onReset: (hard: boolean) => void = () => {};
  private readonly _irqs: readonly IrqLine[];
  private _pirqLevels = 0;
  private _irqLevels = 0;
  private _rc = 0;

  /** `isaIrqs[n]` is ISA IRQ n (16 lines, to the 8259 inputs). */
  constructor(id: string, ports: IoPorts, isaIrqs: readonly IrqLine[]) {
    super(id, {
      vendorId: PIIX3_VENDOR_ID,
      deviceId: PIIX3_ISA_DEVICE_ID,
      classCode: CLASS_ISA_BRIDGE,
      revision: 0,
      headerType: PCI_HEADER_MULTIFUNCTION,
      command: PciCommand.IO | PciCommand.MEMORY | PciCommand.MASTER,
      status: PciStatus.DEVSEL_MEDIUM,
    });
    if (isaIrqs.length !== ISA_IRQ_COUNT) throw new RangeError(`${id}: needs ${ISA_IRQ_COUNT} ISA IRQ lines`);
    this._irqs = isaIrqs;
    ports.register(id, Rc.PORT, 1, {
      read8: () => this._rc,
      write8: (_p, v) => this._rcWrite(v),
    });
    this.reset();
  }

  protected override _resetRegisters(): void {
    for (const [reg, v] of ISA_RESET_VALUES) this.config[reg] = v;
    this._rc = 0;
  }

  override reset(): void {
    super.reset();
    this._pirqLevels = 0;
    this._drive();
  }

  private _rcWrite(v: number): void {
    if (v & Rc.RCPU) {
      this.onReset((v & Rc.SRST) !== 0);
      return;
    }
    this._rc = v & Rc.SRST;
  }

  /** The ISA IRQ a PIRQ is steered to, or -1. */
  pirqRoute(pirq: number): number {
    const r = this.config[Piix3Reg.PIRQRC + (pirq & 3)];
    if (r & Pirq.DISABLE) return -1;
    const irq = r & Pirq.IRQ_MASK;
    return (PIRQ_VALID_IRQS >>> irq) & 1 ? irq : -1;
  }

  /** PirqRouter: the host bridge reports a PIRQ line's level (wired-OR of the functions on it). */
  setPirq(pirq: number, level: number): void {
    if (pirq < 0 || pirq >= PIRQ_COUNT) return;
    if (level) this._pirqLevels |= 1 << pirq;
    else this._pirqLevels &= ~(1 << pirq);
    this._drive();
  }

  protected override _configWritten(addr: number, size: number): void {
    if (rangesOverlap(addr, size, Piix3Reg.PIRQRC, PIRQ_COUNT)) this._drive();
  }

  /** Recompute the ISA IRQ levels and drive the lines that changed. */
  private _drive(): void {
    let want = 0;
    for (let p = 0; p < PIRQ_COUNT; p++) {
      if (!((this._pirqLevels >>> p) & 1)) continue;
      const irq = this.pirqRoute(p);
      if (irq >= 0) want |= 1 << irq;
    }
    const changed = want ^ this._irqLevels;
    this._irqLevels = want;
    if (!changed) return;
    for (let irq = 0; irq < ISA_IRQ_COUNT; irq++) {
      if ((changed >>> irq) & 1) this._irqs[irq].set((want >>> irq) & 1);
    }
  }

  override saveState(): Piix3State {
    return saveFields(Piix3.stateSchema.fields, this) as unknown as Piix3State;
  }

  /** Restores levels without driving the ISA lines: the interrupt controller restores its own inputs. */
  override loadState(s: Piix3State): void {
    loadChecked(this.id, Piix3.stateSchema, this, s);
  }
}

export const enum Piix3IdeReg {
  /** Primary / secondary channel timing (16-bit each); bit 15 IDE decode enable. */
  IDETIM_PRI = 0x40,
  IDETIM_SEC = 0x42,
  SIDETIM = 0x44,
}

export const IDETIM_IDE_ENABLE = 0x8000;
/** BAR 4 (BMIBA, 20h): the bus-master IDE registers, 16 bytes of I/O. */
export const PIIX3_IDE_BM_BAR = 4;
const BM_IO_SIZE = 16;

/**
 * PIIX3 function 1: the IDE controller's configuration space. The ATA
 * channels stay at their compatibility ports (1F0h/3F6h, 170h/376h, IRQ 14/15);
 * the bus-master block moves with BAR 4 (onBarChange(4, base, 16)).
 */
export class Piix3Ide extends PciDevice {
  /** Configuration space only (the channels' state is the IdeController's). */
  static override readonly stateSchema = pciState<Piix3Ide>('piix3-ide', 1, {});
  constructor(id: string) {
    super(
      id,
      {
        vendorId: PIIX3_VENDOR_ID,
        deviceId: PIIX3_IDE_DEVICE_ID,
        classCode: CLASS_IDE_LEGACY_BM,
        revision: 0,
        status: PciStatus.FAST_BACK | PciStatus.DEVSEL_MEDIUM,
      },
      [null, null, null, null, { size: BM_IO_SIZE, io: true }],
    );
    this.reset();
  }

  /** IDETIM's decode enable for a channel (0 = primary, 1 = secondary). QEMU decodes regardless. */
  channelEnabled(channel: number): boolean {
    return (this.readConfig(channel ? Piix3IdeReg.IDETIM_SEC : Piix3IdeReg.IDETIM_PRI, 2) & IDETIM_IDE_ENABLE) !== 0;
  }
}

/**
 * PCI configuration mechanism #1 and bus 0 of the i440FX host bridge.
 *
 * References: PCI Local Bus Specification 2.1, 3.2.2.3.2 (configuration
 * mechanism #1); Intel 82441FX (PMC) datasheet, CONFADD/CONFDATA.
 *
 *   0xCF8  CONFADD, dword access only: bit 31 enable, 23:16 bus, 15:11 device,
 *          10:8 function, 7:2 register. Byte/word accesses to 0xCF8-0xCFB are
 *          not CONFADD (0xCF9 is the PIIX3 reset control register).
 *   0xCFC  CONFDATA: byte, word or dword access; the byte lanes 0xCFC-0xCFF
 *          select register + (port & 3).
 *
 * A read of a function that is not there (or with the enable bit clear, or on
 * another bus) returns all-ones, which is how firmware finds empty slots.
 *
 * Interrupts: each function's INTx pin is swizzled onto PIRQA-D as QEMU's
 * i440FX/PIIX does (pirq = (pin - 1 + slot - 1) & 3) and passed to a
 * PirqRouter (the PIIX3), which steers PIRQs to ISA IRQs. Several functions
 * on one PIRQ share it (wired-OR, level-triggered).
 */
import type { IoPorts } from '../../bus/ports.js';
import type { IrqLine } from '../../bus/irq.js';
import { defineState, loadChecked, saveFields, u32, u8s } from '../../state/schema.js';
import type { PciDevice } from './device.js';
import { PciCfg } from './device.js';

export const enum PciHostPort {
  CONFADD = 0xcf8,
  CONFDATA = 0xcfc,
}

export const enum ConfAdd {
  ENABLE = 0x80000000,
  /** Bits that hold a value: enable, bus, device, function, register (dword aligned). */
  IMPLEMENTED = 0x80fffffc,
  BUS_SHIFT = 16,
  DEVFN_SHIFT = 8,
  REG_MASK = 0xfc,
}

/** Number of PCI interrupt request lines (PIRQA#-PIRQD#). */
export const PCI_NUM_PIRQS = 4;
/** Device/function numbers on one bus: 32 slots x 8 functions. */
export const PCI_DEVFN_COUNT = 256;

/** What steers PIRQA-D onward (the PIIX3's PIRQ route control). */
export interface PirqRouter {
  setPirq(pirq: number, level: number): void;
}

export interface PciHostState {
  confAdd: number;
  /** Level each function drives on its INTx pin, by devfn. */
  intx: Uint8Array;
}

export function devfn(slot: number, fn: number): number {
  return ((slot & 0x1f) << 3) | (fn & 7);
}

/** The PIRQ a function's INTx pin (1-4) lands on in the i440FX/PIIX board wiring. */
export function pirqForPin(slot: number, pin: number): number {
  return (pin - 1 + slot - 1) & 3;
}

export class PciHost {
  /**
   * CONFIG_ADDRESS and each function's INTx level. The per-PIRQ counts are
   * recomputed from the levels and the devices' interrupt pins on load.
   */
  static readonly stateSchema = defineState<PciHost>(
    'pci-host',
    1,
    { confAdd: u32.at('_confAdd'), intx: u8s(PCI_DEVFN_COUNT).at('_intx') },
    {
      transient: ['_devices', '_pirqCount', '_router'],
      postLoad: (h) => {
        h._confAdd = (h._confAdd & ConfAdd.IMPLEMENTED) >>> 0;
        h._pirqCount.fill(0);
        for (let df = 0; df < PCI_DEVFN_COUNT; df++) {
          const dev = h._devices[df];
          const l = h._intx[df] && dev ? 1 : 0;
          h._intx[df] = l;
          if (!l || !dev) continue;
          const pin = dev.config[PciCfg.INTERRUPT_PIN];
          if (pin >= 1 && pin <= 4) h._pirqCount[pirqForPin(df >>> 3, pin)]++;
        }
      },
    },
  );
  readonly id: string;
  private readonly _devices: (PciDevice | null)[] = new Array<PciDevice | null>(PCI_DEVFN_COUNT).fill(null);
  private _confAdd = 0;
  private readonly _intx = new Uint8Array(PCI_DEVFN_COUNT);
  /** How many functions currently assert each PIRQ. */
  private readonly _pirqCount = new Int32Array(PCI_NUM_PIRQS);
  private _router: PirqRouter | null = null;

  constructor(id: string, ports: IoPorts) {
    this.id = id;
    ports.register(id, PciHostPort.CONFADD, 1, {
      read32: () => this._confAdd >>> 0,
      write32: (_p, v) => {
        this._confAdd = (v & ConfAdd.IMPLEMENTED) >>> 0;
      },
    });
    const base = PciHostPort.CONFDATA;
    ports.register(id, base, 1, {
      read8: () => this._dataRead(0, 1),
      write8: (_p, v) => this._dataWrite(0, v, 1),
      read16: () => this._dataRead(0, 2),
      write16: (_p, v) => this._dataWrite(0, v, 2),
      read32: () => this._dataRead(0, 4),
      write32: (_p, v) => this._dataWrite(0, v, 4),
    });
    ports.register(id, base + 1, 1, {
      read8: () => this._dataRead(1, 1),
      write8: (_p, v) => this._dataWrite(1, v, 1),
    });
    ports.register(id, base + 2, 1, {
      read8: () => this._dataRead(2, 1),
      write8: (_p, v) => this._dataWrite(2, v, 1),
      read16: () => this._dataRead(2, 2),
      write16: (_p, v) => this._dataWrite(2, v, 2),
    });
    ports.register(id, base + 3, 1, {
      read8: () => this._dataRead(3, 1),
      write8: (_p, v) => this._dataWrite(3, v, 1),
    });
  }

  /** Put a function on bus 0 at slot/fn and connect its INTx pin to the PIRQ wiring. */
  attach(slot: number, fn: number, dev: PciDevice): void {
    const df = devfn(slot, fn);
    if (this._devices[df]) throw new Error(`${this.id}: ${slot}.${fn} is already taken by ${this._devices[df]!.id}`);
    this._devices[df] = dev;
    dev.connectIntx(this._intxLine(slot, df, dev));
  }

  /** The chip that steers PIRQs to ISA IRQs (the PIIX3 function 0). */
  setPirqRouter(r: PirqRouter): void {
    this._router = r;
  }

  deviceAt(slot: number, fn: number): PciDevice | null {
    return this._devices[devfn(slot, fn)];
  }

  private _intxLine(slot: number, df: number, dev: PciDevice): IrqLine {
    return {
      set: (level: number) => {
        const l = level ? 1 : 0;
        if (this._intx[df] === l) return;
        this._intx[df] = l;
        const pin = dev.config[PciCfg.INTERRUPT_PIN];
        if (pin < 1 || pin > 4) return;
        const pirq = pirqForPin(slot, pin);
        const before = this._pirqCount[pirq] > 0;
        this._pirqCount[pirq] += l ? 1 : -1;
        const after = this._pirqCount[pirq] > 0;
        if (before !== after && this._router) this._router.setPirq(pirq, after ? 1 : 0);
      },
    };
  }

  /** The function CONFADD selects, or null (disabled, other bus, empty slot). */
  private _selected(): PciDevice | null {
    const a = this._confAdd;
    if (!(a & ConfAdd.ENABLE)) return null;
    if (((a >>> ConfAdd.BUS_SHIFT) & 0xff) !== 0) return null;
    const df = (a >>> ConfAdd.DEVFN_SHIFT) & 0xff;
    const dev = this._devices[df];
    if (!dev) return null;
    // A function other than 0 is only seen when function 0 exists (PCI 3.0, 6.2.1).
    if ((df & 7) !== 0 && !this._devices[df & ~7]) return null;
    return dev;
  }

  private _dataRead(lane: number, size: number): number {
    const dev = this._selected();
    const ones = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (!dev) return ones;
    return dev.readConfig((this._confAdd & ConfAdd.REG_MASK) + lane, size);
  }

  private _dataWrite(lane: number, v: number, size: number): void {
    const dev = this._selected();
    if (!dev) return;
    dev.writeConfig((this._confAdd & ConfAdd.REG_MASK) + lane, v, size);
  }

  /** PCI reset: CONFADD clears (functions are reset by their own reset()). */
  reset(): void {
    this._confAdd = 0;
  }

  saveState(): PciHostState {
    return saveFields(PciHost.stateSchema.fields, this) as unknown as PciHostState;
  }

  loadState(s: PciHostState): void {
    loadChecked(this.id, PciHost.stateSchema, this, s);
  }
}

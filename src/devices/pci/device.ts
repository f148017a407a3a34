/**
 * A conventional PCI function: its 256-byte configuration space (type 0
 * header), BARs with size masks, the command register's decode enables and
 * INTx. Chip files (i440fx.ts, piix3.ts, piix4pm.ts, ...) extend it.
 *
 * Reference: PCI Local Bus Specification 2.1/3.0, chapter 6 (configuration
 * space): a BAR's low bits say I/O (bit 0 = 1) or memory; writing all-ones
 * and reading back gives the size mask; a BAR decodes only while the
 * command register's I/O or memory enable is set.
 *
 * Write masks follow QEMU (hw/pci/pci.c pci_init_wmask): the header's
 * writable fields, plus all device-specific bytes 0x40-0xFF unless the chip
 * file narrows them.
 */
import type { IrqLine } from '../../bus/irq.js';
import { NO_IRQ } from '../../bus/irq.js';
import { StateError, type StateObject } from '../../state/state.js';
import { defineState, loadChecked, saveFields, u8, u8s, type FieldSchema, type Fields } from '../../state/schema.js';

/** Configuration header offsets (PCI 3.0, 6.1). */
export const enum PciCfg {
  VENDOR_ID = 0x00,
  DEVICE_ID = 0x02,
  COMMAND = 0x04,
  STATUS = 0x06,
  REVISION_ID = 0x08,
  PROG_IF = 0x09,
  SUBCLASS = 0x0a,
  CLASS = 0x0b,
  CACHE_LINE_SIZE = 0x0c,
  LATENCY_TIMER = 0x0d,
  HEADER_TYPE = 0x0e,
  BAR0 = 0x10,
  SUBSYSTEM_VENDOR_ID = 0x2c,
  SUBSYSTEM_ID = 0x2e,
  ROM_ADDRESS = 0x30,
  INTERRUPT_LINE = 0x3c,
  INTERRUPT_PIN = 0x3d,
  /** First device-specific register. */
  DEVICE_SPECIFIC = 0x40,
}

/** Command register bits. */
export const enum PciCommand {
  IO = 0x0001,
  MEMORY = 0x0002,
  MASTER = 0x0004,
  SPECIAL = 0x0008,
  PARITY = 0x0040,
  SERR = 0x0100,
  INTX_DISABLE = 0x0400,
}

/** Status register bits. */
export const enum PciStatus {
  INTERRUPT = 0x0008,
  FAST_BACK = 0x0080,
  DEVSEL_MEDIUM = 0x0200,
  /** Error bits 15:11 are write-one-to-clear. */
  ERRORS_W1C = 0xf800,
}

export const enum PciBarBits {
  SPACE_IO = 0x01,
  MEM_PREFETCH = 0x08,
  IO_ADDR_MASK = 0xfffffffc,
  MEM_ADDR_MASK = 0xfffffff0,
  ROM_ENABLE = 0x01,
  ROM_ADDR_MASK = 0xfffff800,
}

/** Header type byte: bit 7 marks a multi-function device. */
export const PCI_HEADER_MULTIFUNCTION = 0x80;
/** Number of BARs in a type 0 header; index 6 names the expansion ROM BAR. */
export const PCI_NUM_BARS = 6;
export const PCI_ROM_BAR = 6;
/** A BAR that decodes nothing. */
export const PCI_BAR_UNMAPPED = -1;
/** QEMU gives every function subsystem ids Red Hat / "QEMU virtual machine"; SeaBIOS checks them on 00:00.0. */
export const PCI_SUBVENDOR_QEMU = 0x1af4;
export const PCI_SUBDEVICE_QEMU = 0x1100;
export const PCI_CONFIG_SIZE = 256;

const IO_SPACE_SIZE = 0x10000;
const MEM_SPACE_SIZE = 0x1_0000_0000;
const MIN_IO_BAR = 4;
const MIN_MEM_BAR = 16;
const MIN_ROM_BAR = 2048;

export interface PciIds {
  vendorId: number;
  deviceId: number;
  /** 24-bit class code: class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision: number;
  /** Header type byte (0, or 0x80 for function 0 of a multi-function device). */
  headerType?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 1..4 = INTA#..INTD#, 0 = no interrupt pin. */
  interruptPin?: number;
  /** Power-on command register value. */
  command?: number;
  /** Power-on status register value. */
  status?: number;
}

export interface PciBarSpec {
  /** Size in bytes, a power of two (I/O >= 4, memory >= 16, ROM >= 2048). */
  size: number;
  io?: boolean;
  prefetchable?: boolean;
}

/**
 * Called when what a BAR decodes changes: `addr` is the base the BAR now
 * decodes at, or PCI_BAR_UNMAPPED (-1) when it decodes nothing (decode
 * disabled in the command register, base 0, or out of range).
 */
export type PciBarCallback = (bar: number, addr: number, size: number) => void;

export interface PciDeviceState {
  config: Uint8Array;
  intx: number;
}

/** One PCI function. Chip files extend it; it is usable as-is for simple functions. */
export class PciDevice {
  /**
   * A PCI function's state: its configuration space and INTx level. A chip
   * that holds more declares it with pciState(), which adds these fields.
   * Loading refuses the configuration of another chip (the IDs differ),
   * restores the INTx level without driving the line (the receiver restores
   * its own input levels) and tells the board the BAR decodes (QEMU's
   * pci_update_mappings in post_load).
   */
  static readonly stateSchema: FieldSchema<PciDevice> = defineState<PciDevice>(
    'pci-device',
    1,
    { config: u8s(PCI_CONFIG_SIZE), intx: u8.at('_intxLevel').range(0, 1) },
    {
      transient: ['_wmask', '_w1cmask', '_ids', '_barSize', '_barIo', '_barPrefetch', '_barMapped', '_intx', 'onBarChange'],
      check: (d, s, where) => {
        const cfg = s.config as Uint8Array;
        // identification is not state: a snapshot of another chip is refused
        for (let a = 0; a < 4; a++) {
          if (cfg[a] !== d.config[a]) throw new StateError(`${where}: the state is of PCI device ${hex32(cfg)}, not ${hex32(d.config)}`);
        }
      },
      postLoad: (d) => d._updateMappings(),
    },
  );
  readonly id: string;
  readonly config = new Uint8Array(PCI_CONFIG_SIZE);
  /** Bits the guest may write. */
  protected readonly _wmask = new Uint8Array(PCI_CONFIG_SIZE);
  /** Bits a guest write of 1 clears. */
  protected readonly _w1cmask = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly _ids: PciIds;
  /** Size of each BAR (index 6 = ROM); 0 = not implemented. */
  private readonly _barSize = new Float64Array(PCI_NUM_BARS + 1);
  private readonly _barIo = new Uint8Array(PCI_NUM_BARS + 1);
  private readonly _barPrefetch = new Uint8Array(PCI_NUM_BARS + 1);
  /** What each BAR decodes now (PCI_BAR_UNMAPPED or a base). */
  private readonly _barMapped = new Float64Array(PCI_NUM_BARS + 1).fill(PCI_BAR_UNMAPPED);
  /** The level this function drives on its INTx pin (before INTX_DISABLE). */
  private _intxLevel = 0;
  private _intx: IrqLine = NO_IRQ;
  /** The board's BAR remap hook. */
  onBarChange: PciBarCallback = () => {};

  constructor(id: string, ids: PciIds, bars: readonly (PciBarSpec | null)[] = []) {
    this.id = id;
    this._ids = ids;
    for (let i = 0; i < bars.length && i <= PCI_NUM_BARS; i++) {
      const b = bars[i];
      if (!b) continue;
      const min = i === PCI_ROM_BAR ? MIN_ROM_BAR : b.io ? MIN_IO_BAR : MIN_MEM_BAR;
      if (b.size < min || (b.size & (b.size - 1)) !== 0 || b.size > (b.io ? IO_SPACE_SIZE : 0x8000_0000)) {
        throw new RangeError(`${id}: BAR ${i} size ${b.size} is not a power of two in range`);
      }
      this._barSize[i] = b.size;
      this._barIo[i] = b.io && i !== PCI_ROM_BAR ? 1 : 0;
      this._barPrefetch[i] = b.prefetchable ? 1 : 0;
    }
    this._initMasks();
    this._resetHeader();
  }

  // ---- configuration space access (from the host bridge) ----

  /** Read `size` (1, 2, 4) bytes at `addr`; the access must not cross a dword. */
  readConfig(addr: number, size: number): number {
    addr &= 0xff;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.config[(addr + i) & 0xff];
    return v >>> 0;
  }

  /** Write `size` bytes at `addr` through the write masks, then let the chip react. */
  writeConfig(addr: number, value: number, size: number): void {
    addr &= 0xff;
    for (let i = 0; i < size; i++) {
      const a = (addr + i) & 0xff;
      const b = (value >>> (8 * i)) & 0xff;
      const wm = this._wmask[a];
      this.config[a] = ((this.config[a] & ~wm) | (b & wm)) & ~(b & this._w1cmask[a]);
    }
    if (rangesOverlap(addr, size, PciCfg.COMMAND, 2)) this._driveIntx();
    if (rangesOverlap(addr, size, PciCfg.COMMAND, 2) || rangesOverlap(addr, size, PciCfg.BAR0, 24) || rangesOverlap(addr, size, PciCfg.ROM_ADDRESS, 4)) {
      this._updateMappings();
    }
    this._configWritten(addr, size);
  }

  /** Chip hook: called after every guest write with the written range. */
  protected _configWritten(_addr: number, _size: number): void {}

  // ---- interrupts ----

  /** The board (through the host bridge) connects this function's INTx pin. */
  connectIntx(line: IrqLine): void {
    this._intx = line;
  }

  /** Drive this function's INTx pin (it is level-triggered and shared). */
  setIntx(level: number): void {
    this._intxLevel = level ? 1 : 0;
    this._driveIntx();
  }

  private _driveIntx(): void {
    const st = PciCfg.STATUS;
    if (this._intxLevel) this.config[st] |= PciStatus.INTERRUPT;
    else this.config[st] &= ~PciStatus.INTERRUPT;
    const disabled = (this.readConfig(PciCfg.COMMAND, 2) & PciCommand.INTX_DISABLE) !== 0;
    this._intx.set(this._intxLevel && !disabled ? 1 : 0);
  }

  // ---- BARs ----

  /** The base a BAR decodes at now, or PCI_BAR_UNMAPPED. */
  barAddress(bar: number): number {
    return this._barMapped[bar] ?? PCI_BAR_UNMAPPED;
  }

  barSize(bar: number): number {
    return this._barSize[bar] ?? 0;
  }

  private _barOffset(bar: number): number {
    return bar === PCI_ROM_BAR ? PciCfg.ROM_ADDRESS : PciCfg.BAR0 + 4 * bar;
  }

  /** Where a BAR would decode given the current registers (QEMU pci_bar_address rules). */
  private _effectiveAddress(bar: number): number {
    const size = this._barSize[bar];
    if (size === 0) return PCI_BAR_UNMAPPED;
    const cmd = this.readConfig(PciCfg.COMMAND, 2);
    const raw = this.readConfig(this._barOffset(bar), 4);
    let base: number;
    let limit: number;
    if (this._barIo[bar]) {
      if (!(cmd & PciCommand.IO)) return PCI_BAR_UNMAPPED;
      base = (raw & PciBarBits.IO_ADDR_MASK) >>> 0;
      limit = IO_SPACE_SIZE;
    } else {
      if (!(cmd & PciCommand.MEMORY)) return PCI_BAR_UNMAPPED;
      if (bar === PCI_ROM_BAR && !(raw & PciBarBits.ROM_ENABLE)) return PCI_BAR_UNMAPPED;
      base = (raw & (bar === PCI_ROM_BAR ? PciBarBits.ROM_ADDR_MASK : PciBarBits.MEM_ADDR_MASK)) >>> 0;
      limit = MEM_SPACE_SIZE;
    }
    if (base === 0 || base + size > limit) return PCI_BAR_UNMAPPED;
    return base;
  }

  /** Recompute every BAR's decode and tell the board about each change. */
  protected _updateMappings(): void {
    for (let bar = 0; bar <= PCI_NUM_BARS; bar++) {
      if (this._barSize[bar] === 0) continue;
      const a = this._effectiveAddress(bar);
      if (a !== this._barMapped[bar]) {
        this._barMapped[bar] = a;
        this.onBarChange(bar, a, this._barSize[bar]);
      }
    }
  }

  // ---- reset and state ----

  private _initMasks(): void {
    const wm = this._wmask;
    // Command: I/O, memory, master, special cycles, parity, SERR, INTx disable.
    const cmdMask = PciCommand.IO | PciCommand.MEMORY | PciCommand.MASTER | PciCommand.SPECIAL | PciCommand.PARITY | PciCommand.SERR | PciCommand.INTX_DISABLE;
    wm[PciCfg.COMMAND] = cmdMask & 0xff;
    wm[PciCfg.COMMAND + 1] = cmdMask >>> 8;
    this._w1cmask[PciCfg.STATUS + 1] = PciStatus.ERRORS_W1C >>> 8;
    wm[PciCfg.CACHE_LINE_SIZE] = 0xff;
    wm[PciCfg.LATENCY_TIMER] = 0xff;
    wm[PciCfg.INTERRUPT_LINE] = 0xff;
    for (let a = PciCfg.DEVICE_SPECIFIC; a < PCI_CONFIG_SIZE; a++) wm[a] = 0xff;
    for (let bar = 0; bar <= PCI_NUM_BARS; bar++) {
      const size = this._barSize[bar];
      if (size === 0) continue;
      let mask: number;
      if (bar === PCI_ROM_BAR) mask = ((~(size - 1) & PciBarBits.ROM_ADDR_MASK) | PciBarBits.ROM_ENABLE) >>> 0;
      else if (this._barIo[bar]) mask = (~(size - 1) & PciBarBits.IO_ADDR_MASK) >>> 0;
      else mask = (~(size - 1) & PciBarBits.MEM_ADDR_MASK) >>> 0;
      const off = this._barOffset(bar);
      for (let i = 0; i < 4; i++) wm[off + i] = (mask >>> (8 * i)) & 0xff;
    }
  }

  /** Chip hook to narrow write masks (call from the chip constructor). */
  protected _setWriteMask(addr: number, mask: number): void {
    this._wmask[addr & 0xff] = mask & 0xff;
  }

  private _resetHeader(): void {
    const c = this.config;
    const ids = this._ids;
    c.fill(0);
    put16(c, PciCfg.VENDOR_ID, ids.vendorId);
    put16(c, PciCfg.DEVICE_ID, ids.deviceId);
    put16(c, PciCfg.COMMAND, ids.command ?? 0);
    put16(c, PciCfg.STATUS, ids.status ?? 0);
    c[PciCfg.REVISION_ID] = ids.revision;
    c[PciCfg.PROG_IF] = ids.classCode & 0xff;
    c[PciCfg.SUBCLASS] = (ids.classCode >>> 8) & 0xff;
    c[PciCfg.CLASS] = (ids.classCode >>> 16) & 0xff;
    c[PciCfg.HEADER_TYPE] = ids.headerType ?? 0;
    put16(c, PciCfg.SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId ?? PCI_SUBVENDOR_QEMU);
    put16(c, PciCfg.SUBSYSTEM_ID, ids.subsystemId ?? PCI_SUBDEVICE_QEMU);
    c[PciCfg.INTERRUPT_PIN] = ids.interruptPin ?? 0;
    for (let bar = 0; bar < PCI_NUM_BARS; bar++) {
      if (this._barSize[bar] === 0) continue;
      const off = this._barOffset(bar);
      c[off] = this._barIo[bar] ? PciBarBits.SPACE_IO : this._barPrefetch[bar] ? PciBarBits.MEM_PREFETCH : 0;
    }
  }

  /** Chip hook: power-on values of device-specific registers (called by reset()). */
  protected _resetRegisters(): void {}

  /** PCI reset (RST#): power-on configuration, INTx deasserted, BARs stop decoding. */
  reset(): void {
    this._resetHeader();
    this._resetRegisters();
    this._intxLevel = 0;
    this._driveIntx();
    this._updateMappings();
  }

  /** The state as the chip's schema declares it (a chip declares its own `stateSchema` with pciState()). */
  saveState(): PciDeviceState {
    return saveFields((this.constructor as typeof PciDevice).stateSchema.fields, this) as unknown as PciDeviceState;
  }

  /** Check the state against the chip's schema, then restore it and tell the board the BAR decodes. */
  loadState(s: PciDeviceState): void {
    loadChecked(this.id, (this.constructor as typeof PciDevice).stateSchema, this, s);
  }
}

/**
 * The state schema of a PCI function that holds more than its configuration
 * space: the PciDevice fields and `fields`, the base's transient properties
 * and `transient`, the base's ID check then `check`, then the base's
 * postLoad (BAR decodes) and `postLoad`.
 */
export function pciState<T extends PciDevice>(
  name: string,
  version: number,
  fields: Fields,
  opts: { transient?: readonly string[]; check?: (obj: T, s: StateObject, where: string) => void; postLoad?: (obj: T) => void } = {},
): FieldSchema<T> {
  const base = PciDevice.stateSchema;
  return defineState<T>(
    name,
    version,
    { ...base.fields, ...fields },
    {
      transient: [...base.transient, ...(opts.transient ?? [])],
      check: (d, s, where) => {
        base.check?.(d, s, where);
        opts.check?.(d, s, where);
      },
      postLoad: (d) => {
        base.postLoad?.(d);
        opts.postLoad?.(d);
      },
    },
  );
}

function put16(c: Uint8Array, off: number, v: number): void {
  c[off] = v & 0xff;
  c[off + 1] = (v >>> 8) & 0xff;
}

function hex32(c: Uint8Array): string {
  return ((c[0] | (c[1] << 8) | (c[2] << 16) | (c[3] << 24)) >>> 0).toString(16).padStart(8, '0');
}

/** True when [a, a+alen) and [b, b+blen) overlap. */
export function rangesOverlap(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

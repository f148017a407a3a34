/**
 * QEMU firmware configuration device (fw_cfg), I/O-port flavour of the PC.
 *
 * Reference: QEMU docs/specs/fw_cfg.rst and hw/nvram/fw_cfg.c; SeaBIOS
 * src/fw/paravirt.c (qemu_cfg_*), the consumer this must satisfy.
 *
 *   0x510  selector, 16-bit write: selects an item and rewinds its offset.
 *   0x511  data, 8-bit: reads the selected item's next byte (0 past its end or
 *          for an item that does not exist). QEMU also answers byte reads at
 *          0x510 with data; byte writes are ignored (the write channel is gone).
 *   0x514  DMA address, 64-bit big-endian, written as two 32-bit halves: the
 *          high half at 0x514, then the low half at 0x518, which starts the
 *          transfer (SeaBIOS writes only the low half). Reads give "QEMU CFG".
 *
 * DMA: the address points at a FWCfgDmaAccess in guest memory, all big-endian:
 *   u32 control (ERROR 0x01, READ 0x02, SKIP 0x04, SELECT 0x08 with the key
 *   in bits 31:16, WRITE 0x10), u32 length, u64 address.
 * The transfer runs synchronously; control is then written back as 0, or as
 * ERROR on a bad address or a write (no item is writable here).
 *
 * What the board fills for SeaBIOS (see docs/devices-fwcfg.md):
 *   SIGNATURE, ID (automatic); UUID; RAM_SIZE; NB_CPUS; MAX_CPUS; NOGRAPHIC;
 *   BOOT_MENU; NUMA (zero count); IRQ0_OVERRIDE; files "etc/e820",
 *   "etc/boot-cpus", "etc/boot-fail-wait", "bootorder", and optionally
 *   "genroms/*", "vgaroms/*", ACPI and SMBIOS tables.
 */
import type { DmaView } from '../bus/dma.js';
import type { IoPorts } from '../bus/ports.js';
import { defineState, loadChecked, saveFields, u16, u32 } from '../state/schema.js';

export const enum FwCfgPort {
  SELECTOR = 0x510,
  DATA = 0x511,
  DMA = 0x514,
  DMA_LOW = 0x518,
}

/** Item keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h). */
export const enum FwCfgKey {
  SIGNATURE = 0x00,
  ID = 0x01,
  UUID = 0x02,
  RAM_SIZE = 0x03,
  NOGRAPHIC = 0x04,
  NB_CPUS = 0x05,
  MACHINE_ID = 0x06,
  KERNEL_ADDR = 0x07,
  KERNEL_SIZE = 0x08,
  KERNEL_CMDLINE = 0x09,
  INITRD_ADDR = 0x0a,
  INITRD_SIZE = 0x0b,
  BOOT_DEVICE = 0x0c,
  NUMA = 0x0d,
  BOOT_MENU = 0x0e,
  MAX_CPUS = 0x0f,
  KERNEL_ENTRY = 0x10,
  KERNEL_DATA = 0x11,
  INITRD_DATA = 0x12,
  CMDLINE_ADDR = 0x13,
  CMDLINE_SIZE = 0x14,
  CMDLINE_DATA = 0x15,
  SETUP_ADDR = 0x16,
  SETUP_SIZE = 0x17,
  SETUP_DATA = 0x18,
  FILE_DIR = 0x19,
  FILE_FIRST = 0x20,
  /** Bit 14: the old write channel. Bit 15: architecture-specific items. */
  WRITE_CHANNEL = 0x4000,
  ARCH_LOCAL = 0x8000,
  ENTRY_MASK = 0x3fff,
  ACPI_TABLES = 0x8000,
  SMBIOS_ENTRIES = 0x8001,
  IRQ0_OVERRIDE = 0x8002,
  E820_TABLE = 0x8003,
  HPET = 0x8004,
}

/** ID bits: the traditional interface and the DMA interface. */
export const enum FwCfgId {
  TRADITIONAL = 0x01,
  DMA = 0x02,
}

export const enum FwCfgDmaCtl {
  ERROR = 0x01,
  READ = 0x02,
  SKIP = 0x04,
  SELECT = 0x08,
  WRITE = 0x10,
}

/** FWCfgDmaAccess layout. */
const DMA_ACCESS_SIZE = 16;
const DMA_CONTROL_OFFSET = 0;
const DMA_LENGTH_OFFSET = 4;
const DMA_ADDRESS_OFFSET = 8;
/** "QEMU CFG", what a read of the DMA address register returns. */
const DMA_SIGNATURE = [0x51, 0x45, 0x4d, 0x55, 0x20, 0x43, 0x46, 0x47];
const SIGNATURE = [0x51, 0x45, 0x4d, 0x55]; // "QEMU"
/** File directory entry: be32 size, be16 select, be16 reserved, char name[56]. */
export const FW_CFG_FILE_NAME_SIZE = 56;
const FILE_ENTRY_SIZE = 64;
/** File slots (QEMU's default for current pc machines). */
export const FW_CFG_FILE_SLOTS = 0x20;
/** The selector value that names nothing. */
const INVALID_KEY = 0xffff;
/** Bytes of zeros written per step when a read runs past an item's end. */
const DMA_CHUNK = 0x10000;
const ZEROS = new Uint8Array(DMA_CHUNK);
/** e820 entry types SeaBIOS accepts from "etc/e820". */
export const enum E820Type {
  RAM = 1,
  RESERVED = 2,
}
const E820_ENTRY_SIZE = 20;

export interface FwCfgState {
  key: number;
  offset: number;
  dmaAddrHigh: number;
}

export class FwCfg {
  /**
   * Only the guest-visible cursor is state (selected key, offset in the
   * item, the DMA address's high half); the items are rebuilt from the
   * machine's configuration. Loading selects the key again and bounds the
   * offset by the item's length.
   */
  static readonly stateSchema = defineState<FwCfg>(
    'fwcfg',
    1,
    { key: u16.at('_key'), offset: u32.at('_offset'), dmaAddrHigh: u32.at('_dmaAddrHigh') },
    {
      transient: ['_dma', '_items', '_files', 'dmaErrors'],
      postLoad: (f) => {
        const offset = f._offset;
        f.select(f._key);
        const item = f._item(f._key);
        f._offset = Math.min(offset, item ? item.length : 0);
      },
    },
  );
  readonly id: string;
  private readonly _dma: DmaView;
  /** Items by key (selector & ENTRY_MASK, plus ARCH_LOCAL). */
  private readonly _items = new Map<number, Uint8Array>();
  private readonly _files: { name: string; data: Uint8Array }[] = [];
  private _key = 0;
  private _offset = 0;
  private _dmaAddrHigh = 0;
  /** DMA requests refused because their descriptor or buffer was outside guest memory. */
  dmaErrors = 0;

  constructor(id: string, ports: IoPorts, dma: DmaView) {
    this.id = id;
    this._dma = dma;
    ports.register(id, FwCfgPort.SELECTOR, 1, {
      read8: () => this._readByte(),
      write8: () => {},
      read16: () => 0xffff,
      write16: (_p, v) => this.select(v),
    });
    ports.register(id, FwCfgPort.DATA, 1, { read8: () => this._readByte(), write8: () => {} });
    for (let i = 0; i < DMA_SIGNATURE.length; i++) {
      ports.register(id, FwCfgPort.DMA + i, 1, { read8: () => DMA_SIGNATURE[i], write8: () => {} });
    }
    // The big-endian halves arrive as little-endian port values: swap.
    ports.register(id, FwCfgPort.DMA, 1, { write32: (_p, v) => (this._dmaAddrHigh = bswap32(v)) });
    ports.register(id, FwCfgPort.DMA_LOW, 1, { write32: (_p, v) => this._startDma(this._dmaAddrHigh, bswap32(v)) });
    this.setItem(FwCfgKey.SIGNATURE, Uint8Array.from(SIGNATURE));
    this.setItem(FwCfgKey.ID, le32(FwCfgId.TRADITIONAL | FwCfgId.DMA));
    this._rebuildDir();
  }

  // ---- board-side configuration ----

  /** Set an item's bytes (a copy is kept). Keys at or above FILE_FIRST belong to addFile. */
  setItem(key: number, data: Uint8Array): void {
    const k = key & (FwCfgKey.ENTRY_MASK | FwCfgKey.ARCH_LOCAL);
    if ((k & FwCfgKey.ENTRY_MASK) >= FwCfgKey.FILE_FIRST && !(k & FwCfgKey.ARCH_LOCAL)) {
      throw new RangeError(`${this.id}: key 0x${k.toString(16)} is a file slot; use addFile`);
    }
    this._items.set(k, data.slice());
  }

  setU16(key: number, v: number): void {
    this.setItem(key, le16(v));
  }
  setU32(key: number, v: number): void {
    this.setItem(key, le32(v));
  }
  setU64(key: number, v: number): void {
    this.setItem(key, le64(v));
  }

  /**
   * Add (or replace) a named file. The directory stays sorted by name, as
   * QEMU keeps it, so selectors are FILE_FIRST + the file's rank.
   */
  addFile(name: string, data: Uint8Array): void {
    const bytes = ascii(name);
    if (bytes.length === 0 || bytes.length >= FW_CFG_FILE_NAME_SIZE || bytes.includes(0)) throw new RangeError(`${this.id}: bad file name "${name}"`);
    const at = this._files.findIndex((f) => f.name === name);
    if (at >= 0) this._files[at].data = data.slice();
    else {
      if (this._files.length >= FW_CFG_FILE_SLOTS) throw new RangeError(`${this.id}: no free file slot for "${name}"`);
      this._files.push({ name, data: data.slice() });
      this._files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    this._rebuildDir();
  }

  /** The selector of a file, or -1. */
  fileKey(name: string): number {
    const i = this._files.findIndex((f) => f.name === name);
    return i < 0 ? -1 : FwCfgKey.FILE_FIRST + i;
  }

  private _rebuildDir(): void {
    const dir = new Uint8Array(4 + FILE_ENTRY_SIZE * this._files.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, this._files.length, false);
    this._files.forEach((f, i) => {
      const at = 4 + i * FILE_ENTRY_SIZE;
      dv.setUint32(at, f.data.length, false);
      dv.setUint16(at + 4, FwCfgKey.FILE_FIRST + i, false);
      dir.set(ascii(f.name), at + 8);
    });
    this._items.set(FwCfgKey.FILE_DIR, dir);
  }

  /** The bytes behind a selector, or null for nothing there. */
  private _item(key: number): Uint8Array | null {
    if (key === INVALID_KEY) return null;
    const k = key & (FwCfgKey.ENTRY_MASK | FwCfgKey.ARCH_LOCAL);
    const idx = k & FwCfgKey.ENTRY_MASK;
    if (!(k & FwCfgKey.ARCH_LOCAL) && idx >= FwCfgKey.FILE_FIRST) {
      const f = this._files[idx - FwCfgKey.FILE_FIRST];
      return f ? f.data : null;
    }
    return this._items.get(k) ?? null;
  }

  // ---- guest-side interface ----

  /** Select an item and rewind (selector port or DMA SELECT). Keys past the file slots name nothing. */
  select(key: number): void {
    key &= 0xffff;
    this._offset = 0;
    this._key = (key & FwCfgKey.ENTRY_MASK) >= FwCfgKey.FILE_FIRST + FW_CFG_FILE_SLOTS ? INVALID_KEY : key;
  }

  private _readByte(): number {
    const item = this._item(this._key);
    if (!item || this._offset >= item.length) return 0;
    return item[this._offset++];
  }

  /** Run one FWCfgDmaAccess (QEMU fw_cfg_dma_transfer), synchronously. */
  private _startDma(high: number, low: number): void {
    this._dmaAddrHigh = 0;
    const desc = high * 0x1_0000_0000 + low;
    const hdr = new Uint8Array(DMA_ACCESS_SIZE);
    if (!this._dma.read(desc, hdr)) {
      this.dmaErrors++;
      this._writeControl(desc, FwCfgDmaCtl.ERROR);
      return;
    }
    const dv = new DataView(hdr.buffer);
    let control = dv.getUint32(DMA_CONTROL_OFFSET, false);
    let length = dv.getUint32(DMA_LENGTH_OFFSET, false);
    let addr = dv.getUint32(DMA_ADDRESS_OFFSET, false) * 0x1_0000_0000 + dv.getUint32(DMA_ADDRESS_OFFSET + 4, false);
    if (control & FwCfgDmaCtl.SELECT) this.select(control >>> 16);
    const read = (control & FwCfgDmaCtl.READ) !== 0;
    const write = !read && (control & FwCfgDmaCtl.WRITE) !== 0;
    if (!read && !write && !(control & FwCfgDmaCtl.SKIP)) length = 0;
    control = 0;
    const item = this._item(this._key);
    while (length > 0 && !(control & FwCfgDmaCtl.ERROR)) {
      let len: number;
      if (!item || this._offset >= item.length) {
        // Past the end: reads fill zeros, writes fail, skips just advance.
        len = read ? Math.min(length, DMA_CHUNK) : length;
        if (read && !this._dma.write(addr, ZEROS.subarray(0, len))) control |= FwCfgDmaCtl.ERROR;
        if (write) control |= FwCfgDmaCtl.ERROR;
      } else {
        len = Math.min(length, item.length - this._offset);
        if (read && !this._dma.write(addr, item.subarray(this._offset, this._offset + len))) control |= FwCfgDmaCtl.ERROR;
        // No item accepts writes (QEMU's writable items are not modelled).
        if (write) control |= FwCfgDmaCtl.ERROR;
        this._offset += len;
      }
      addr += len;
      length -= len;
    }
    if (control & FwCfgDmaCtl.ERROR) this.dmaErrors++;
    this._writeControl(desc, control);
  }

  private _writeControl(desc: number, control: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, control, false);
    this._dma.write(desc + DMA_CONTROL_OFFSET, b);
  }

  // ---- reset and state ----

  /** Reset selects the signature (QEMU fw_cfg_reset). Items are configuration and stay. */
  reset(): void {
    this.select(FwCfgKey.SIGNATURE);
    this._dmaAddrHigh = 0;
  }

  saveState(): FwCfgState {
    return saveFields(FwCfg.stateSchema.fields, this) as unknown as FwCfgState;
  }

  loadState(s: FwCfgState): void {
    loadChecked(this.id, FwCfg.stateSchema, this, s);
  }
}

// ---- helpers for the board ----

export function le16(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff);
}

export function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function le64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, v % 0x1_0000_0000 >>> 0, true);
  dv.setUint32(4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
  return b;
}

export interface E820Entry {
  address: number;
  length: number;
  type: E820Type;
}

/** "etc/e820" contents: packed { le64 address, le64 length, le32 type } (SeaBIOS qemu_cfg_e820). */
export function e820Table(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(entries.length * E820_ENTRY_SIZE);
  entries.forEach((e, i) => {
    out.set(le64(e.address), i * E820_ENTRY_SIZE);
    out.set(le64(e.length), i * E820_ENTRY_SIZE + 8);
    out.set(le32(e.type), i * E820_ENTRY_SIZE + 16);
  });
  return out;
}

/** A file name as bytes; names are printable ASCII (anything else becomes '?'). */
function ascii(name: string): Uint8Array {
  const out = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out[i] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
  return out;
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

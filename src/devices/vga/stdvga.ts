/**
 * QEMU "-vga std": a VGA with the Bochs VBE extensions on PCI (1234:1111),
 * the card SeaVGABIOS (vgabios-stdvga.bin) and Linux's bochs-drm, vesafb,
 * vga16fb and vgacon drive.
 *
 * This file is the device: it owns video memory, wires the register file
 * (regs.ts), the plane logic (planes.ts) and the VBE block (vbe.ts) to the
 * I/O ports and memory windows, and renders frames (text.ts, graphics.ts).
 *
 * References: IBM VGA Technical Reference; Bochs vbe.h; QEMU
 * docs/specs/standard-vga.txt (PCI ids, BAR layout, MMIO BAR offsets) and
 * hw/display/vga-pci.c (the "qemu extended registers" block).
 *
 * Board wiring (the device never maps itself into memory):
 * - I/O ports are registered by the constructor.
 * - `mmioHandlers` serve the legacy window: phys.addMmio(0xA0000, 0x20000, vga.mmioHandlers).
 * - PCI: attach `new StdVgaPci(id, vga)` (pci.ts) to the host bridge and set
 *   its `onBarChange` hook to remap pages; it keeps this device told of BAR
 *   moves (`onBarChange` here). BAR0 is the linear framebuffer: either
 *   map `vram` as RAM pages at the BAR address (fast; rendering reads `vram`
 *   directly so no write tracking is needed), or route it to `lfbHandlers`.
 *   BAR2 is the MMIO register block: route it to `mmioBarHandlers`.
 */
import type { MmioHandlers } from '../../bus/memory.js';
import type { IoPorts } from '../../bus/ports.js';
import type { Clock } from '../../time/clock.js';
import { StateError } from '../../state/state.js';
import { defineState, i32, loadChecked, saveFields, struct, u16, u16s, u8s } from '../../state/schema.js';
import { renderVbe, renderVgaGraphics } from './graphics.js';
import type { PixelFrame } from './graphics.js';
import { LEGACY_WINDOW_BASE, LEGACY_WINDOW_SIZE, VGA_PLANES_BYTES, VgaPlanes } from './planes.js';
import { AttrIndex, Gc, GcMisc, Seq, SeqClocking, VgaRegs } from './regs.js';
import type { VgaRegsState } from './regs.js';
import { renderText, renderTextPixels } from './text.js';
import type { TextScreen } from './text.js';
import { BochsVbe, VBE_REGS, VbeIndex, VbePort } from './vbe.js';

export type { PixelFrame } from './graphics.js';
export type { TextScreen } from './text.js';

/** Default video memory (QEMU's vgamem_mb default). */
export const STDVGA_DEFAULT_VRAM_BYTES = 16 * 1024 * 1024;
const MIN_VRAM_BYTES = VGA_PLANES_BYTES;
const MAX_VRAM_BYTES = 256 * 1024 * 1024;

/** PCI identity of the QEMU standard VGA (structurally a PciIds of src/devices/pci/device.ts). */
export const STDVGA_PCI_IDS = {
  vendorId: 0x1234,
  deviceId: 0x1111,
  /** Display controller, VGA compatible. */
  classCode: 0x030000,
  /** Revision 2 announces the extended register block at MMIO 0x600 (bochs-drm checks it). */
  revision: 2,
} as const;

export const enum StdVgaBar {
  FRAMEBUFFER = 0,
  MMIO = 2,
}
/** Size of the MMIO register BAR. */
export const STDVGA_MMIO_BAR_BYTES = 4096;

/** The BARs (structurally PciBarSpec[]): BAR0 prefetchable framebuffer, BAR2 MMIO registers. */
export function stdVgaPciBars(vramBytes = STDVGA_DEFAULT_VRAM_BYTES): ({ size: number; prefetchable?: boolean } | null)[] {
  return [{ size: vramBytes, prefetchable: true }, null, { size: STDVGA_MMIO_BAR_BYTES }];
}

/** Offsets in the MMIO BAR (QEMU docs/specs/standard-vga.txt). */
export const enum MmioBar {
  EDID = 0x000,
  EDID_END = 0x400,
  /** VGA ports 0x3C0-0x3DF at 0x400-0x41F. */
  VGA_PORTS = 0x400,
  VGA_PORTS_END = 0x420,
  /** DISPI register i at 0x500 + 2 * i. */
  VBE = 0x500,
  VBE_END = 0x516,
  QEXT = 0x600,
  QEXT_SIZE_REG = 0x600,
  QEXT_BYTEORDER = 0x604,
  QEXT_END = 0x608,
}
const VGA_PORTS_MMIO_FIRST = 0x3c0;
/** Size of the extended register block. */
const QEXT_SIZE = 8;
/** Byte-order register value for little-endian framebuffer. */
const QEXT_LITTLE_ENDIAN = 0x1e1e1e1e;
/** "Not mapped" BAR address. */
const UNMAPPED = -1;

/** What the display shows. */
export type DisplayMode = 'text' | 'graphics' | 'vbe' | 'blank';

export interface StdVgaOptions {
  /** Video memory size: a power of two from 256 KiB to 256 MiB (default 16 MiB). */
  vramBytes?: number;
  /**
   * Memory to use as video memory (length = vramBytes), for a board that
   * places the framebuffer inside guest physical memory to map BAR0 as RAM.
   */
  vram?: Uint8Array;
}

export interface StdVgaState {
  regs: VgaRegsState;
  latch: number;
  vbeIndex: number;
  vbeRegs: Uint16Array;
  vram: Uint8Array;
}

export class StdVgaConfigError extends Error {}

export class StdVga {
  /**
   * The register file, the plane latches, the VBE registers and video
   * memory (its size is the board's choice: a state of another size is
   * refused). The BAR decodes come from the PCI function's state.
   */
  static readonly stateSchema = defineState<StdVga>(
    'stdvga',
    1,
    {
      regs: struct(VgaRegs.stateFields),
      latch: i32.at('planes.latch'),
      vbeIndex: u16.at('vbe.index'),
      vbeRegs: u16s(VBE_REGS).at('vbe.regs'),
      vram: u8s(MAX_VRAM_BYTES).upTo(),
    },
    {
      transient: ['mmioHandlers', 'lfbHandlers', 'mmioBarHandlers', '_lfbBase', '_mmioBase', '_clock', ...VgaRegs.stateTransient.map((k) => `regs.${k}`)],
      check: (vga, s, where) => {
        const n = (s.vram as Uint8Array).length;
        if (n !== vga.vram.length) throw new StateError(`${where}.vram must be a Uint8Array of length ${vga.vram.length}, not ${n}`);
      },
      postLoad: (vga) => {
        VgaRegs.loaded(vga.regs);
        vga.vbe.loaded();
      },
    },
  );
  readonly id: string;
  /** Video memory: the VGA planes (first 256 KiB, interleaved) and the VBE linear framebuffer. */
  readonly vram: Uint8Array;
  readonly regs: VgaRegs;
  readonly planes: VgaPlanes;
  readonly vbe: BochsVbe;
  /** Legacy window handlers (absolute addresses 0xA0000-0xBFFFF). */
  readonly mmioHandlers: MmioHandlers;
  /** Linear framebuffer handlers (absolute addresses in BAR0), for a board that maps BAR0 as MMIO. */
  readonly lfbHandlers: MmioHandlers;
  /** MMIO register BAR handlers (absolute addresses in BAR2). */
  readonly mmioBarHandlers: MmioHandlers;
  private _lfbBase = UNMAPPED;
  private _mmioBase = UNMAPPED;
  private readonly _clock: Clock;

  constructor(id: string, ports: IoPorts, clock: Clock, opts: StdVgaOptions = {}) {
    this.id = id;
    this._clock = clock;
    const size = opts.vramBytes ?? opts.vram?.length ?? STDVGA_DEFAULT_VRAM_BYTES;
    if (size < MIN_VRAM_BYTES || size > MAX_VRAM_BYTES || (size & (size - 1)) !== 0) {
      throw new StdVgaConfigError(`${id}: video memory of ${size} bytes is not a power of two from 256 KiB to 256 MiB`);
    }
    if (opts.vram && opts.vram.length !== size) {
      throw new StdVgaConfigError(`${id}: the video memory given is ${opts.vram.length} bytes, not ${size}`);
    }
    this.vram = opts.vram ?? new Uint8Array(size);
    this.regs = new VgaRegs(clock);
    this.planes = new VgaPlanes(this.regs, this.vram);
    this.vbe = new BochsVbe(this.regs, this.planes, size);

    const rd = (p: number): number => this.regs.read(p);
    const wr = (p: number, v: number): void => this.regs.write(p, v);
    ports.register(id, 0x3b4, 2, { read8: rd, write8: wr });
    ports.register(id, 0x3ba, 1, { read8: rd, write8: wr });
    ports.register(id, 0x3c0, 16, { read8: rd, write8: wr });
    ports.register(id, 0x3d4, 2, { read8: rd, write8: wr });
    ports.register(id, 0x3da, 1, { read8: rd, write8: wr });
    ports.register(id, VbePort.INDEX, 1, {
      read8: () => this.vbe.index & 0xff,
      write8: (_p, v) => (this.vbe.index = v & 0xff),
      read16: () => this.vbe.index,
      write16: (_p, v) => (this.vbe.index = v & 0xffff),
    });
    const dataHandlers = {
      read8: () => this.vbe.readData() & 0xff,
      write8: (_p: number, v: number) => this.vbe.writeData(v & 0xff),
      read16: () => this.vbe.readData(),
      write16: (_p: number, v: number) => this.vbe.writeData(v),
    };
    ports.register(id, VbePort.DATA, 1, dataHandlers);
    ports.register(id, VbePort.DATA_ALT, 1, dataHandlers);

    this.mmioHandlers = {
      read8: (a) => {
        const off = a - LEGACY_WINDOW_BASE;
        return off >= 0 && off < LEGACY_WINDOW_SIZE ? this.planes.read(off) : 0xff;
      },
      write8: (a, v) => {
        const off = a - LEGACY_WINDOW_BASE;
        if (off >= 0 && off < LEGACY_WINDOW_SIZE) this.planes.write(off, v);
      },
    };
    this.lfbHandlers = {
      read8: (a) => {
        const off = a - this._lfbBase;
        return this._lfbBase !== UNMAPPED && off >= 0 && off < this.vram.length ? this.vram[off] : 0xff;
      },
      write8: (a, v) => {
        const off = a - this._lfbBase;
        if (this._lfbBase !== UNMAPPED && off >= 0 && off < this.vram.length) this.vram[off] = v;
      },
    };
    this.mmioBarHandlers = {
      read8: (a) => this._mmioRead8(a - this._mmioBase),
      write8: (a, v) => this._mmioWrite8(a - this._mmioBase, v),
      read16: (a) => this._mmioRead16(a - this._mmioBase),
      write16: (a, v) => this._mmioWrite16(a - this._mmioBase, v),
    };
    this.reset();
  }

  reset(): void {
    this.regs.reset();
    this.planes.reset();
    this.vbe.reset();
  }

  /**
   * The PCI function's BAR `bar` now decodes at `addr` (or -1: not at all).
   * Signature of PciBarCallback; the board calls it, then remaps the pages.
   */
  onBarChange(bar: number, addr: number, _size: number): void {
    if (bar === StdVgaBar.FRAMEBUFFER) this._lfbBase = addr;
    else if (bar === StdVgaBar.MMIO) this._mmioBase = addr;
  }

  /** Where the linear framebuffer is (BAR0), or -1. */
  get lfbBase(): number {
    return this._lfbBase;
  }

  // ---- MMIO BAR ----

  private _mmioRead8(off: number): number {
    if (this._mmioBase === UNMAPPED || off < 0) return 0xff;
    if (off < MmioBar.EDID_END) return 0; // no EDID blob: drivers fall back to their default modes
    if (off >= MmioBar.VGA_PORTS && off < MmioBar.VGA_PORTS_END) return this.regs.read(VGA_PORTS_MMIO_FIRST + off - MmioBar.VGA_PORTS);
    if (off >= MmioBar.VBE && off < MmioBar.VBE_END) return (this._mmioRead16(off & ~1) >> ((off & 1) * 8)) & 0xff;
    if (off >= MmioBar.QEXT && off < MmioBar.QEXT_END) {
      const reg = off & ~3;
      const v = reg === MmioBar.QEXT_SIZE_REG ? QEXT_SIZE : QEXT_LITTLE_ENDIAN;
      return (v >>> ((off & 3) * 8)) & 0xff;
    }
    return 0xff;
  }

  private _mmioWrite8(off: number, v: number): void {
    if (this._mmioBase === UNMAPPED || off < 0) return;
    if (off >= MmioBar.VGA_PORTS && off < MmioBar.VGA_PORTS_END) this.regs.write(VGA_PORTS_MMIO_FIRST + off - MmioBar.VGA_PORTS, v);
    // VBE registers take 16-bit writes only; the qext byte order is fixed (little endian).
  }

  private _mmioRead16(off: number): number {
    if (this._mmioBase !== UNMAPPED && off >= MmioBar.VBE && off < MmioBar.VBE_END && !(off & 1)) {
      const saved = this.vbe.index;
      this.vbe.index = (off - MmioBar.VBE) >> 1;
      const v = this.vbe.readData();
      this.vbe.index = saved;
      return v;
    }
    return this._mmioRead8(off) | (this._mmioRead8(off + 1) << 8);
  }

  private _mmioWrite16(off: number, v: number): void {
    if (this._mmioBase !== UNMAPPED && off >= MmioBar.VBE && off < MmioBar.VBE_END && !(off & 1)) {
      const saved = this.vbe.index;
      this.vbe.index = (off - MmioBar.VBE) >> 1;
      this.vbe.writeData(v);
      this.vbe.index = saved;
      return;
    }
    // VGA ports: index byte first, then data (so an index/data pair is one write).
    this._mmioWrite8(off, v & 0xff);
    this._mmioWrite8(off + 1, (v >>> 8) & 0xff);
  }

  // ---- display ----

  /** True when the display is blanked (screen off, or the attribute controller's PAS bit clear). */
  private _blanked(): boolean {
    return (this.regs.seq[Seq.CLOCKING_MODE] & SeqClocking.SCREEN_OFF) !== 0 || !(this.regs.attrIndex & AttrIndex.PAS);
  }

  /** What kind of picture the card produces now. */
  displayMode(): DisplayMode {
    if (this.vbe.enabled && this.vbe.bpp !== 4) return 'vbe';
    if (this._blanked()) return 'blank';
    return this.regs.gc[Gc.MISC] & GcMisc.GRAPHICS ? 'graphics' : 'text';
  }

  /** The text-mode screen (cells decoded as CP437), whatever mode is set. */
  renderText(): TextScreen {
    return renderText(this.regs, this.vram);
  }

  /** The picture as RGBA pixels, in any mode (text is drawn with the plane-2 font). */
  renderPixels(): PixelFrame {
    if (this.vbe.enabled && this.vbe.bpp !== 4) return renderVbe(this.regs, this.vbe, this.vram);
    const blank = this._blanked();
    if (this.vbe.enabled) {
      const r = this.vbe.regs;
      const geom = { width: r[VbeIndex.XRES], height: r[VbeIndex.YRES], start: this.vbe.startByte, lineOffset: this.vbe.lineBytes };
      return renderVgaGraphics(this.regs, this.vram, blank, geom);
    }
    if (this.regs.gc[Gc.MISC] & GcMisc.GRAPHICS) return renderVgaGraphics(this.regs, this.vram, blank);
    return renderTextPixels(this.regs, this.vram, this._clock.nowNs, blank);
  }

  // ---- state ----

  saveState(): StdVgaState {
    return saveFields(StdVga.stateSchema.fields, this) as unknown as StdVgaState;
  }

  loadState(s: StdVgaState): void {
    loadChecked(this.id, StdVga.stateSchema, this, s);
  }
}

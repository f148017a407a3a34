/**
 * Bochs VBE ("DISPI") extensions: the index/data ports 0x1CE/0x1CF (0x1D0 is
 * a second data port), the registers behind them, banked access through the
 * 64 KiB A0000 window and the linear framebuffer.
 *
 * References: Bochs iodev/display/vga.cc and vbe.h (register set, IDs
 * 0xB0C0-0xB0C5, ENABLE bits); QEMU hw/display/vga.c (what SeaVGABIOS's
 * bochsvga.c and Linux's bochs-drm expect: GETCAPS, VIDEO_MEMORY_64K, the VGA
 * registers a mode set programs, how bad values are fixed up) and
 * docs/specs/standard-vga.txt (the MMIO BAR layout).
 *
 * Enabling a mode reprograms the VGA registers as QEMU does (graphics mode,
 * A0000 64 KiB map, chain-4 for 8 bpp and up, CRTC width/height/offset), so
 * the VGA read/write paths serve banked access and the VGA renderer draws
 * 4 bpp planar VBE modes.
 */
import { clampInt, Crtc, CrtcBits, Gc, GcMisc, GcMode, MemMap, Seq, SeqClocking, SeqMemMode, ShiftMode } from './regs.js';
import type { VgaRegs } from './regs.js';
import type { VgaPlanes } from './planes.js';

export const enum VbePort {
  INDEX = 0x1ce,
  DATA = 0x1cf,
  /** A second data port (QEMU decodes it; some old software uses it). */
  DATA_ALT = 0x1d0,
}

/** DISPI register indices. */
export const enum VbeIndex {
  ID = 0x0,
  XRES = 0x1,
  YRES = 0x2,
  BPP = 0x3,
  ENABLE = 0x4,
  BANK = 0x5,
  VIRT_WIDTH = 0x6,
  VIRT_HEIGHT = 0x7,
  X_OFFSET = 0x8,
  Y_OFFSET = 0x9,
  VIDEO_MEMORY_64K = 0xa,
}
/** Registers held in the register array (ID..Y_OFFSET). */
export const VBE_REGS = 10;

export const enum VbeId {
  ID0 = 0xb0c0,
  ID5 = 0xb0c5,
}

/** ENABLE register bits. */
export const enum VbeEnable {
  ENABLED = 0x01,
  /** While set, XRES/YRES/BPP read back the maximum values. */
  GETCAPS = 0x02,
  DAC_8BIT = 0x20,
  LFB_ENABLED = 0x40,
  NOCLEARMEM = 0x80,
}

/** Limits reported through GETCAPS (QEMU's values). */
export const VBE_MAX_XRES = 16000;
export const VBE_MAX_YRES = 12000;
export const VBE_MAX_BPP = 32;
const BANK_SHIFT = 16;
/** Widths are kept multiples of 8 pixels (the CRTC counts 8-pixel characters). */
const XRES_ALIGN = 8;

/** Bytes per pixel for a depth (4 bpp is planar: 0 here). */
export function vbeBytesPerPixel(bpp: number): number {
  return bpp === 4 ? 0 : (bpp + 7) >> 3;
}

export class BochsVbe {
  index = 0;
  readonly regs = new Uint16Array(VBE_REGS);
  private readonly _vga: VgaRegs;
  private readonly _planes: VgaPlanes;
  private readonly _vramSize: number;

  constructor(vga: VgaRegs, planes: VgaPlanes, vramSize: number) {
    this._vga = vga;
    this._planes = planes;
    this._vramSize = vramSize;
    this.reset();
  }

  reset(): void {
    this.index = 0;
    this.regs.fill(0);
    this.regs[VbeIndex.ID] = VbeId.ID5;
    this.regs[VbeIndex.BPP] = 8;
    this._applyDerived();
  }

  get enabled(): boolean {
    return (this.regs[VbeIndex.ENABLE] & VbeEnable.ENABLED) !== 0;
  }

  get bpp(): number {
    return this.regs[VbeIndex.BPP];
  }

  /** Bytes from one line of the virtual screen to the next (4 bpp: plane offsets, one byte per plane). */
  get lineBytes(): number {
    const bpp = this.bpp;
    const w = this.regs[VbeIndex.VIRT_WIDTH];
    return bpp === 4 ? w >> 3 : w * vbeBytesPerPixel(bpp);
  }

  /** Byte offset of the displayed top-left pixel in the framebuffer (4 bpp: plane offset). */
  get startByte(): number {
    const bpp = this.bpp;
    const x = this.regs[VbeIndex.X_OFFSET];
    return this.regs[VbeIndex.Y_OFFSET] * this.lineBytes + (bpp === 4 ? x >> 3 : x * vbeBytesPerPixel(bpp));
  }

  readData(): number {
    const i = this.index;
    if (i < VBE_REGS) {
      if (this.regs[VbeIndex.ENABLE] & VbeEnable.GETCAPS) {
        if (i === VbeIndex.XRES) return VBE_MAX_XRES;
        if (i === VbeIndex.YRES) return VBE_MAX_YRES;
        if (i === VbeIndex.BPP) return VBE_MAX_BPP;
      }
      return this.regs[i];
    }
    if (i === VbeIndex.VIDEO_MEMORY_64K) return Math.min(0xffff, this._vramSize >>> BANK_SHIFT);
    return 0;
  }

  writeData(v: number): void {
    v &= 0xffff;
    const r = this.regs;
    switch (this.index) {
      case VbeIndex.ID:
        if (v >= VbeId.ID0 && v <= VbeId.ID5) r[VbeIndex.ID] = v;
        return;
      case VbeIndex.XRES:
      case VbeIndex.YRES:
      case VbeIndex.BPP:
      case VbeIndex.VIRT_WIDTH:
      case VbeIndex.VIRT_HEIGHT:
      case VbeIndex.X_OFFSET:
      case VbeIndex.Y_OFFSET:
        r[this.index] = v;
        this._fixup();
        return;
      case VbeIndex.BANK: {
        const banks = Math.max(1, this._vramSize >>> BANK_SHIFT);
        // 4 bpp banks count plane offsets, four bytes of memory each.
        const limit = r[VbeIndex.BPP] === 4 ? Math.max(1, banks >> 2) : banks;
        r[VbeIndex.BANK] = v % limit;
        this._applyDerived();
        return;
      }
      case VbeIndex.ENABLE:
        this._writeEnable(v);
        return;
      default:
        return;
    }
  }

  private _writeEnable(v: number): void {
    const r = this.regs;
    const wasEnabled = this.enabled;
    r[VbeIndex.ENABLE] = v;
    if (v & VbeEnable.ENABLED && !wasEnabled) {
      r[VbeIndex.VIRT_WIDTH] = 0;
      r[VbeIndex.VIRT_HEIGHT] = 0;
      r[VbeIndex.X_OFFSET] = 0;
      r[VbeIndex.Y_OFFSET] = 0;
      this._fixup();
      if (!(v & VbeEnable.NOCLEARMEM)) {
        const end = Math.min(this._planes.vram.length, r[VbeIndex.YRES] * this.lineBytes * (r[VbeIndex.BPP] === 4 ? 4 : 1));
        this._planes.vram.fill(0, 0, end);
      }
      this._programVga();
    } else if (!(v & VbeEnable.ENABLED)) {
      r[VbeIndex.BANK] = 0;
    }
    this._applyDerived();
  }

  /** Make the registers self-consistent (after QEMU's vbe_fixup_regs): the mode always fits in memory. */
  private _fixup(): void {
    const r = this.regs;
    if (!this.enabled) return;
    let bpp = r[VbeIndex.BPP];
    if (bpp !== 4 && bpp !== 8 && bpp !== 15 && bpp !== 16 && bpp !== 24 && bpp !== 32) bpp = 8;
    r[VbeIndex.BPP] = bpp;
    let xres = r[VbeIndex.XRES];
    xres = Math.min(VBE_MAX_XRES, Math.max(XRES_ALIGN, (xres + XRES_ALIGN - 1) & ~(XRES_ALIGN - 1)));
    r[VbeIndex.XRES] = xres;
    let vw = (r[VbeIndex.VIRT_WIDTH] + XRES_ALIGN - 1) & ~(XRES_ALIGN - 1);
    if (vw < xres) vw = xres;
    // Bytes of memory one virtual line uses (4 bpp: 4 planes x vw/8).
    r[VbeIndex.VIRT_WIDTH] = Math.min(0xffff, vw);
    const perLine = bpp === 4 ? vw >> 1 : vw * vbeBytesPerPixel(bpp);
    const maxLines = Math.max(1, Math.floor(this._vramSize / perLine));
    let yres = r[VbeIndex.YRES];
    yres = Math.max(1, Math.min(yres, VBE_MAX_YRES, maxLines));
    r[VbeIndex.YRES] = yres;
    let vh = r[VbeIndex.VIRT_HEIGHT];
    vh = Math.min(Math.max(vh, yres), maxLines, 0xffff);
    r[VbeIndex.VIRT_HEIGHT] = vh;
    // Offsets are limited by memory only (as QEMU), not by VIRT_HEIGHT:
    // bochs-drm pages through all of video memory with Y_OFFSET.
    r[VbeIndex.X_OFFSET] = Math.min(r[VbeIndex.X_OFFSET], vw - xres);
    if (r[VbeIndex.Y_OFFSET] + yres > maxLines) r[VbeIndex.Y_OFFSET] = maxLines - yres;
  }

  /** Program the VGA registers for a VBE mode (what QEMU does on enable). */
  private _programVga(): void {
    const v = this._vga;
    const r = this.regs;
    const xres = r[VbeIndex.XRES];
    const yres = r[VbeIndex.YRES];
    const bpp = r[VbeIndex.BPP];
    const lineBytes = bpp === 4 ? xres >> 1 : xres * vbeBytesPerPixel(bpp);
    v.gc[Gc.MISC] = (v.gc[Gc.MISC] & ~(GcMisc.MAP_MASK << GcMisc.MAP_SHIFT)) | (MemMap.A0000_64K << GcMisc.MAP_SHIFT) | GcMisc.GRAPHICS;
    v.crtc[Crtc.MODE] |= CrtcBits.MODE_CGA_BANKS | CrtcBits.MODE_HGC_BANKS;
    v.crtc[Crtc.OFFSET] = (lineBytes >> 3) & 0xff;
    v.crtc[Crtc.H_DISPLAY_END] = ((xres >> 3) - 1) & 0xff;
    const vde = yres - 1;
    v.crtc[Crtc.V_DISPLAY_END] = vde & 0xff;
    v.crtc[Crtc.OVERFLOW] =
      (v.crtc[Crtc.OVERFLOW] & ~(CrtcBits.OVERFLOW_VDE8 | CrtcBits.OVERFLOW_VDE9)) |
      ((vde >> 7) & CrtcBits.OVERFLOW_VDE8) |
      ((vde >> 3) & CrtcBits.OVERFLOW_VDE9);
    // Line compare at its maximum (1023): no split screen.
    v.crtc[Crtc.LINE_COMPARE] = 0xff;
    v.crtc[Crtc.OVERFLOW] |= CrtcBits.OVERFLOW_LINE_COMPARE8;
    v.crtc[Crtc.MAX_SCAN_LINE] = (v.crtc[Crtc.MAX_SCAN_LINE] & ~(CrtcBits.MSL_DOUBLE_SCAN | CrtcBits.MSL_MASK)) | CrtcBits.MSL_LINE_COMPARE9;
    let shift: number;
    if (bpp === 4) {
      shift = ShiftMode.PLANAR16;
      v.seq[Seq.CLOCKING_MODE] &= ~SeqClocking.DOT_CLOCK_DIV2;
    } else {
      shift = ShiftMode.COLOR256;
      v.seq[Seq.MEMORY_MODE] |= SeqMemMode.CHAIN4;
      v.seq[Seq.MAP_MASK] |= 0x0f;
    }
    v.gc[Gc.MODE] = (v.gc[Gc.MODE] & ~(GcMode.SHIFT_MASK << GcMode.SHIFT_SHIFT)) | (shift << GcMode.SHIFT_SHIFT);
  }

  /** Values other blocks read from the VBE registers. */
  private _applyDerived(): void {
    this._planes.bankOffset = this.enabled ? this.regs[VbeIndex.BANK] << BANK_SHIFT : 0;
    this._planes.vbeDirect = this.enabled && this.bpp !== 4;
    this._vga.dac8bit = (this.regs[VbeIndex.ENABLE] & VbeEnable.DAC_8BIT) !== 0;
  }

  /** After a load (StdVga.stateSchema): values re-fixed so a hostile snapshot cannot describe a mode outside memory, and the derived values recomputed. */
  loaded(): void {
    const id = this.regs[VbeIndex.ID];
    if (id < VbeId.ID0 || id > VbeId.ID5) this.regs[VbeIndex.ID] = VbeId.ID5;
    this._fixup();
    const banks = Math.max(1, this._vramSize >>> BANK_SHIFT);
    this.regs[VbeIndex.BANK] %= banks;
    this._applyDerived();
  }
}

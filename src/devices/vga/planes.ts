/**
 * VGA video memory as the CPU sees it through the legacy window
 * (0xA0000-0xBFFFF): four 64 KiB planes, the memory map select, chain-4 and
 * odd/even addressing, the four latches, read modes 0-1 and write modes 0-3
 * (set/reset, enable set/reset, data rotate, logical function, bit mask,
 * map mask).
 *
 * References: IBM VGA Technical Reference, "Graphics Controller Registers" and
 * "Sequencer Registers"; FreeVGA "VGA Memory Organization" and "Read/Write
 * Modes".
 *
 * Layout (as QEMU's vga.c, which SeaVGABIOS and the Linux drivers are tested
 * against): video memory is one byte array in which the four planes are
 * interleaved, byte `4 * offset + plane` holding plane `plane` at `offset`.
 * The first 256 KiB are the VGA planes and the same array is the VBE linear
 * framebuffer. Chain-4 maps CPU address a to plane a & 3 at offset a >> 2 (so
 * mode 13h and VBE 8 bpp are plain linear bytes), and odd/even maps CPU
 * address a to plane a & 1 (or 3/2) at offset a >> 1: the CRTC's word and
 * doubleword address shifts are folded into the write path, and the display
 * reads one offset per character or per 4 pixels.
 */
import { Gc, GcMisc, GcMode, MemMap, Seq, SeqMemMode } from './regs.js';
import type { VgaRegs } from './regs.js';

/** Size of the VGA planes (4 x 64 KiB). */
export const VGA_PLANES_BYTES = 256 * 1024;
/** The legacy window: 128 KiB at 0xA0000. */
export const LEGACY_WINDOW_BASE = 0xa0000;
export const LEGACY_WINDOW_SIZE = 0x20000;

const WINDOW_64K = 0x10000;
const PLANE_OFFSET_MASK = 0xffff;
const WINDOW_32K = 0x8000;
const B0000_OFFSET = 0x10000;
const B8000_OFFSET = 0x18000;
/** Planes selected by CPU A0 in odd/even mode: even -> 0 and 2, odd -> 1 and 3. */
const ODD_EVEN_PLANES_EVEN = 0x5;
const ODD_EVEN_PLANES_ODD = 0xa;

/** Expand a 4-bit plane mask to a 32-bit byte mask (bit p -> byte p all ones). */
const EXPAND4 = new Int32Array(16);
for (let i = 0; i < 16; i++) {
  EXPAND4[i] = (i & 1 ? 0xff : 0) | (i & 2 ? 0xff00 : 0) | (i & 4 ? 0xff0000 : 0) | (i & 8 ? 0xff000000 : 0);
}

/** Video memory and the CPU's view of it through the legacy window. */
export class VgaPlanes {
  readonly vram: Uint8Array;
  /** The four latches, plane 0 in bits 7:0. */
  latch = 0;
  /** Byte offset added in the 64 KiB A0000 window (the VBE bank). */
  bankOffset = 0;
  /**
   * Set while a VBE packed-pixel mode is on: chain-4 writes store the byte
   * as is, whatever the graphics controller holds (as QEMU, which never
   * applies write modes under chain-4; the VGA BIOS does not program them
   * for VBE modes).
   */
  vbeDirect = false;
  private readonly _regs: VgaRegs;

  constructor(regs: VgaRegs, vram: Uint8Array) {
    this._regs = regs;
    this.vram = vram;
  }

  reset(): void {
    this.latch = 0;
    this.bankOffset = 0;
    this.vbeDirect = false;
  }

  /** Window offset (0..0x1FFFF) to a memory address per the memory map select, or -1 outside it. */
  private _decode(addr: number): number {
    switch ((this._regs.gc[Gc.MISC] >> GcMisc.MAP_SHIFT) & GcMisc.MAP_MASK) {
      case MemMap.A0000_128K:
        return addr;
      case MemMap.A0000_64K:
        return addr < WINDOW_64K ? addr + this.bankOffset : -1;
      case MemMap.B0000_32K:
        addr -= B0000_OFFSET;
        return addr >= 0 && addr < WINDOW_32K ? addr : -1;
      default:
        addr -= B8000_OFFSET;
        return addr >= 0 ? addr : -1;
    }
  }

  /** Planar offset: the planes have 16 address bits, except for VBE banks beyond them. */
  private _planarOffset(a: number): number {
    return this.bankOffset === 0 ? a & PLANE_OFFSET_MASK : a;
  }

  private _loadLatch(off: number): number {
    const m = this.vram;
    const b = off << 2;
    if (b + 3 >= m.length) return 0;
    return m[b] | (m[b + 1] << 8) | (m[b + 2] << 16) | (m[b + 3] << 24);
  }

  /** CPU read of window offset `addr` (0..0x1FFFF). */
  read(addr: number): number {
    const a = this._decode(addr);
    if (a < 0) return 0xff;
    const r = this._regs;
    let off: number;
    let plane: number;
    if (r.seq[Seq.MEMORY_MODE] & SeqMemMode.CHAIN4) {
      off = a >>> 2;
      plane = a & 3;
    } else if (r.gc[Gc.MODE] & GcMode.HOST_ODD_EVEN) {
      off = a >>> 1;
      plane = (r.gc[Gc.READ_MAP_SELECT] & 2) | (a & 1);
    } else {
      off = this._planarOffset(a);
      plane = r.gc[Gc.READ_MAP_SELECT] & 3;
    }
    if ((off << 2) + 3 >= this.vram.length) return 0xff;
    this.latch = this._loadLatch(off);
    if (!(r.gc[Gc.MODE] & GcMode.READ_MODE)) return (this.latch >>> (plane * 8)) & 0xff;
    // Read mode 1: colour compare over the planes not masked by Color Don't Care.
    let x = (this.latch ^ EXPAND4[r.gc[Gc.COLOR_COMPARE] & 0xf]) & EXPAND4[r.gc[Gc.COLOR_DONT_CARE] & 0xf];
    x |= (x >>> 8) | (x >>> 16) | (x >>> 24);
    return ~x & 0xff;
  }

  /** CPU write of byte `v` at window offset `addr` (0..0x1FFFF). */
  write(addr: number, v: number): void {
    const a = this._decode(addr);
    if (a < 0) return;
    const r = this._regs;
    const mapMask = r.seq[Seq.MAP_MASK] & 0xf;
    let off: number;
    let planes: number;
    const memMode = r.seq[Seq.MEMORY_MODE];
    if (memMode & SeqMemMode.CHAIN4) {
      if (this.vbeDirect) {
        if (a < this.vram.length && mapMask & (1 << (a & 3))) this.vram[a] = v;
        return;
      }
      off = a >>> 2;
      planes = mapMask & (1 << (a & 3));
    } else if (!(memMode & SeqMemMode.ODD_EVEN_DISABLE)) {
      off = a >>> 1;
      planes = mapMask & (a & 1 ? ODD_EVEN_PLANES_ODD : ODD_EVEN_PLANES_EVEN);
    } else {
      off = this._planarOffset(a);
      planes = mapMask;
    }
    const b = off << 2;
    if (planes === 0 || b + 3 >= this.vram.length) return;
    const val = this._pipeline(v & 0xff);
    const m = this.vram;
    if (planes & 1) m[b] = val;
    if (planes & 2) m[b + 1] = val >>> 8;
    if (planes & 4) m[b + 2] = val >>> 16;
    if (planes & 8) m[b + 3] = val >>> 24;
  }

  /** The graphics controller's write data path: the 32-bit value for the four planes. */
  private _pipeline(v: number): number {
    const gc = this._regs.gc;
    const mode = gc[Gc.MODE] & GcMode.WRITE_MODE;
    if (mode === 1) return this.latch; // write mode 1: latches straight to the planes
    const rot = gc[Gc.DATA_ROTATE] & 7;
    let bitMask = gc[Gc.BIT_MASK];
    let val: number;
    if (mode === 0) {
      v = ((v >>> rot) | (v << (8 - rot))) & 0xff;
      val = v * 0x01010101;
      const esr = EXPAND4[gc[Gc.ENABLE_SET_RESET] & 0xf];
      val = (val & ~esr) | (EXPAND4[gc[Gc.SET_RESET] & 0xf] & esr);
    } else if (mode === 2) {
      val = EXPAND4[v & 0xf];
    } else {
      v = ((v >>> rot) | (v << (8 - rot))) & 0xff;
      bitMask &= v;
      val = EXPAND4[gc[Gc.SET_RESET] & 0xf];
    }
    // Logical function (GR3 bits 4:3), not applied in write mode 1.
    switch ((gc[Gc.DATA_ROTATE] >> 3) & 3) {
      case 1:
        val &= this.latch;
        break;
      case 2:
        val |= this.latch;
        break;
      case 3:
        val ^= this.latch;
        break;
    }
    const bm = bitMask * 0x01010101;
    return (val & bm) | (this.latch & ~bm);
  }
}

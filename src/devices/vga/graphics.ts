/**
 * Graphics-mode rendering to RGBA: the VGA's planar 16-colour, CGA 4-colour
 * and 256-colour shift modes through the CRTC's addressing (start address,
 * offset, maximum scan line, double scan, CGA/Hercules bank substitution),
 * the attribute palette and the DAC; and the Bochs VBE packed-pixel modes
 * (8 bpp through the DAC, 15/16/24/32 bpp direct colour).
 *
 * References: IBM VGA Technical Reference ("Attribute Controller",
 * "CRT Controller", "Video DAC"); FreeVGA "VGA Addressing" and "Attribute
 * Controller Registers"; pixel formats of the Bochs VBE modes as QEMU's
 * vga-helpers.h draws them (15 = x:5:5:5, 16 = 5:6:5, 24 = B,G,R bytes,
 * 32 = B,G,R,x bytes).
 *
 * Graphics modes also honour the line-compare split screen (CR18 with its
 * overflow bits; AR10 bit 5 stops panning below the split), horizontal pixel
 * panning (AR13) and byte panning (CR8 bits 6:5). Not modelled: the overscan
 * border (see docs/devices-vga.md).
 */
import { Attr, AttrMode, Crtc, CrtcBits, DAC_ENTRIES, Gc, GcMode, ShiftMode } from './regs.js';
import type { VgaRegs } from './regs.js';
import { vbeBytesPerPixel, VbeIndex } from './vbe.js';
import type { BochsVbe } from './vbe.js';

/** A rendered frame: width x height pixels, 4 bytes (R, G, B, A) each. */
export interface PixelFrame {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

/** The VGA's CRTC address counter wraps at 64 Ki plane offsets (256 KiB). */
const PLANE_OFFSET_MASK = 0xffff;
/** Sanity cap on scan lines a guest can ask for (the CRTC counts 11 bits). */
export const MAX_SCAN_LINES = 2048;
const OPAQUE = 255;

/** The DAC as 8-bit R, G, B triples, after 6-to-8-bit expansion unless the 8-bit DAC is on. */
export function dacRgb(regs: VgaRegs): Uint8Array {
  const out = new Uint8Array(DAC_ENTRIES * 3);
  const d = regs.dac;
  if (regs.dac8bit) {
    out.set(d);
  } else {
    for (let i = 0; i < out.length; i++) {
      const v = d[i] & 0x3f;
      out[i] = (v << 2) | (v >> 4);
    }
  }
  return out;
}

/**
 * DAC index for a 4-bit pixel or text colour: colour plane enable, the
 * attribute palette, then the colour select bits (P5:4 or P7:4), and the
 * pixel mask.
 */
export function attrToDac(regs: VgaRegs, idx: number): number {
  const ar = regs.attr;
  let v = ar[Attr.PALETTE0 + (idx & 0xf)];
  if (ar[Attr.MODE] & AttrMode.P54_SELECT) v = ((ar[Attr.COLOR_SELECT] & 0x0f) << 4) | (v & 0x0f);
  else v = ((ar[Attr.COLOR_SELECT] & 0x0c) << 4) | (v & 0x3f);
  return v & regs.dacMask;
}

function putPixel(rgba: Uint8ClampedArray, o: number, pal: Uint8Array, dacIndex: number): void {
  const p = dacIndex * 3;
  rgba[o] = pal[p];
  rgba[o + 1] = pal[p + 1];
  rgba[o + 2] = pal[p + 2];
  rgba[o + 3] = OPAQUE;
}

/** An opaque black frame. */
export function blankFrame(width: number, height: number): PixelFrame {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = OPAQUE;
  return { width, height, rgba };
}

/**
 * Geometry that replaces the CRTC's when a VBE planar (4 bpp) mode is on:
 * as QEMU does, the VBE registers give the size, the line length and the
 * start, in plane offsets (SeaVGABIOS leaves CR13 inconsistent for them).
 */
export interface PlanarGeometry {
  width: number;
  height: number;
  start: number;
  lineOffset: number;
}

/** Render a VGA graphics mode (GR6 graphics bit set), or a VBE 4 bpp mode given its geometry. */
export function renderVgaGraphics(regs: VgaRegs, vram: Uint8Array, blank: boolean, vbeGeom: PlanarGeometry | null = null): PixelFrame {
  const cr = regs.crtc;
  const shift = vbeGeom ? ShiftMode.PLANAR16 : (regs.gc[Gc.MODE] >> GcMode.SHIFT_SHIFT) & GcMode.SHIFT_MASK;
  const is256 = shift >= ShiftMode.COLOR256;
  const chars = vbeGeom ? vbeGeom.width >> 3 : cr[Crtc.H_DISPLAY_END] + 1;
  const width = is256 ? chars * 4 : chars * 8;
  const physLines = vbeGeom ? vbeGeom.height : Math.min(regs.verticalDisplayLines, MAX_SCAN_LINES);
  const msl = vbeGeom ? 1 : regs.maxScanLine;
  const dbl = !vbeGeom && cr[Crtc.MAX_SCAN_LINE] & CrtcBits.MSL_DOUBLE_SCAN ? 2 : 1;
  const cga1 = !vbeGeom && !(cr[Crtc.MODE] & CrtcBits.MODE_CGA_BANKS);
  const cga2 = !vbeGeom && !(cr[Crtc.MODE] & CrtcBits.MODE_HGC_BANKS);
  // Scan lines that repeat the same memory are drawn once.
  const repeat = dbl * (cga1 || cga2 ? 1 : msl);
  const height = Math.max(1, Math.floor(physLines / repeat));
  const frame = blankFrame(width, height);
  if (blank) return frame;
  const rgba = frame.rgba;
  const pal = dacRgb(regs);
  const pal16 = new Uint8Array(16);
  for (let i = 0; i < 16; i++) pal16[i] = attrToDac(regs, i);
  const planeEnable = regs.attr[Attr.PLANE_ENABLE] & 0xf;
  const ar = regs.attr;
  // CR8 bits 6:5 byte panning moves the start address by whole characters.
  const start = vbeGeom ? vbeGeom.start : regs.startAddress + ((cr[Crtc.PRESET_ROW_SCAN] >> 5) & 3);
  const lineOffset = vbeGeom ? vbeGeom.lineOffset : regs.lineOffset;
  // VBE planar modes may use more than the VGA's 64 Ki plane offsets.
  const addrMask = vbeGeom ? 0x7fffffff : PLANE_OFFSET_MASK;
  // Row-scan substitution bit positions, in plane offsets: CPU address bit 13
  // is plane offset bit 12 when odd/even halves the addresses (word mode).
  const bankBit = cr[Crtc.MODE] & CrtcBits.MODE_BYTE ? 13 : 12;
  // Split screen: after scan line `lineCompare` the display restarts at address 0.
  const lineCompare = vbeGeom ? Infinity : regs.lineCompare;
  // Horizontal pixel panning (AR13): 0-7 pixels (values 8-15 pan by 0); 256-colour modes pan in 2-pixel steps.
  const panReg = ar[Attr.H_PANNING] & 0xf;
  const panTop = vbeGeom || panReg > 7 ? 0 : is256 ? panReg >> 1 : panReg;
  const panSplit = ar[Attr.MODE] & AttrMode.PIXEL_PANNING ? 0 : panTop;
  const ppc = is256 ? 4 : 8;
  // DAC indices of one line, one character more than shown so panning can shift in the next one.
  const line = new Uint8Array((chars + 1) * ppc);
  const dacMask = regs.dacMask;
  const vlen = vram.length;
  for (let y = 0; y < height; y++) {
    const py = y * repeat;
    const split = py > lineCompare;
    const ly = Math.floor((split ? py - lineCompare - 1 : py) / dbl);
    const row = Math.floor(ly / msl);
    const rs = ly - row * msl;
    let addr = (split ? 0 : start) + row * lineOffset;
    if (cga1) addr = (addr & ~(1 << bankBit)) | ((rs & 1) << bankBit);
    if (cga2) addr = (addr & ~(1 << (bankBit + 1))) | (((rs >> 1) & 1) << (bankBit + 1));
    line.fill(0);
    let x = 0;
    for (let c = 0; c <= chars; c++, x += ppc) {
      const b = ((addr + c) & addrMask) * 4;
      if (b + 3 >= vlen) continue;
      const p0 = vram[b];
      const p1 = vram[b + 1];
      const p2 = vram[b + 2];
      const p3 = vram[b + 3];
      if (is256) {
        line[x] = p0 & dacMask;
        line[x + 1] = p1 & dacMask;
        line[x + 2] = p2 & dacMask;
        line[x + 3] = p3 & dacMask;
      } else if (shift === ShiftMode.CGA4) {
        // Interleaved shift: planes 0/2 give pixels 0-3, planes 1/3 pixels 4-7, 2 bits each.
        for (let k = 0; k < 4; k++) {
          const sh = 6 - 2 * k;
          line[x + k] = pal16[(((p0 >> sh) & 3) | (((p2 >> sh) & 3) << 2)) & planeEnable];
          line[x + k + 4] = pal16[(((p1 >> sh) & 3) | (((p3 >> sh) & 3) << 2)) & planeEnable];
        }
      } else {
        for (let bit = 7; bit >= 0; bit--) {
          const idx = ((p0 >> bit) & 1) | (((p1 >> bit) & 1) << 1) | (((p2 >> bit) & 1) << 2) | (((p3 >> bit) & 1) << 3);
          line[x + 7 - bit] = pal16[idx & planeEnable];
        }
      }
    }
    const pan = split ? panSplit : panTop;
    let o = y * width * 4;
    for (let i = 0; i < width; i++, o += 4) putPixel(rgba, o, pal, line[i + pan]);
  }
  return frame;
}

/** Render a VBE packed-pixel mode (8, 15, 16, 24 or 32 bpp) from the linear framebuffer. */
export function renderVbe(regs: VgaRegs, vbe: BochsVbe, vram: Uint8Array): PixelFrame {
  const width = vbe.regs[VbeIndex.XRES];
  const height = vbe.regs[VbeIndex.YRES];
  const bpp = vbe.bpp;
  const bytes = vbeBytesPerPixel(bpp);
  const frame = blankFrame(width, height);
  const rgba = frame.rgba;
  const pal = dacRgb(regs);
  const line = vbe.lineBytes;
  const start = vbe.startByte;
  const vlen = vram.length;
  let o = 0;
  for (let y = 0; y < height; y++) {
    let a = start + y * line;
    for (let x = 0; x < width; x++, a += bytes, o += 4) {
      if (a + bytes > vlen) continue;
      switch (bpp) {
        case 8: {
          const p = (vram[a] & regs.dacMask) * 3;
          rgba[o] = pal[p];
          rgba[o + 1] = pal[p + 1];
          rgba[o + 2] = pal[p + 2];
          break;
        }
        case 15: {
          const v = vram[a] | (vram[a + 1] << 8);
          rgba[o] = expand5((v >> 10) & 0x1f);
          rgba[o + 1] = expand5((v >> 5) & 0x1f);
          rgba[o + 2] = expand5(v & 0x1f);
          break;
        }
        case 16: {
          const v = vram[a] | (vram[a + 1] << 8);
          rgba[o] = expand5((v >> 11) & 0x1f);
          rgba[o + 1] = ((v >> 5) & 0x3f) * 4 + (((v >> 5) & 0x3f) >> 4);
          rgba[o + 2] = expand5(v & 0x1f);
          break;
        }
        default: // 24 and 32: B, G, R (, x)
          rgba[o] = vram[a + 2];
          rgba[o + 1] = vram[a + 1];
          rgba[o + 2] = vram[a];
          break;
      }
    }
  }
  return frame;
}

function expand5(v: number): number {
  return (v << 3) | (v >> 2);
}

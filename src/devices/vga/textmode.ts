/**
 * BIOS text mode 03h (80×25, 9×16 cells, colour) set without a VGA BIOS:
 * what the VGA BIOS's INT 10h AH=00h AL=03h leaves in the registers and
 * planes, for a machine that starts Linux directly (`-kernel`, no firmware),
 * so that the kernel's vgacon finds the text mode the boot protocol's
 * screen_info describes. The register values are SeaBIOS's mode 03h table
 * (vgasrc/stdvgamodes.c: misc 0x67, sequ_03, crtc_03, actl_03, grdc_03,
 * palette2); the font is the 8×16 font of a VGA BIOS image (findFont8x16),
 * since a VGA's character generator is RAM the BIOS fills.
 */
import type { VgaRegs } from './regs.js';
import { AttrIndex } from './regs.js';

/** Text mode 03h's geometry, for the boot protocol's screen_info. */
export const TEXT_MODE_03H = { mode: 3, cols: 80, rows: 25, cellHeight: 16 } as const;

const MISC_03 = 0x67;
/** Sequencer 0-4: reset off, 9-dot cells, planes 0 and 1, font block 0, odd/even. */
const SEQ_03 = [0x03, 0x00, 0x03, 0x00, 0x02];
const CRTC_03 = [
  0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
  0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
const ATTR_03 = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
  0x0c, 0x00, 0x0f, 0x08, 0x00,
];
const GC_03 = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff];
/** Glyphs are 32 bytes apart in plane 2, whatever their height. */
const GLYPH_STRIDE = 32;

/**
 * The 8×16 font (256 glyphs, 4096 bytes) inside a VGA BIOS image, found by
 * its first two glyphs (a blank cell, then the IBM PC's smiling face), or
 * null when the image holds none.
 */
export function findFont8x16(rom: Uint8Array): Uint8Array | null {
  const face = [0x00, 0x00, 0x7e, 0x81, 0xa5, 0x81, 0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e, 0x00, 0x00, 0x00, 0x00];
  outer: for (let i = 16; i + 4096 - 16 <= rom.length; i++) {
    for (let j = 0; j < 16; j++) if (rom[i + j] !== face[j]) continue outer;
    for (let j = 1; j <= 16; j++) if (rom[i - j] !== 0) continue outer;
    return rom.slice(i - 16, i - 16 + 4096);
  }
  return null;
}

/**
 * Put the VGA in text mode 03h as its BIOS would: the registers, the
 * EGA-compatible 64-colour palette, the font in plane 2 block 0, and a
 * cleared screen (grey on black spaces) with the cursor at the top left.
 * `vram` is the card's memory, planes interleaved byte by byte.
 */
export function setTextMode03h(regs: VgaRegs, vram: Uint8Array, font8x16: Uint8Array): void {
  regs.misc = MISC_03;
  regs.seq.set(SEQ_03);
  regs.crtc.set(CRTC_03);
  regs.gc.set(GC_03);
  regs.attr.set(ATTR_03);
  regs.attrIndex = AttrIndex.PAS; // the screen on
  regs.attrFlipFlop = false;
  regs.dacMask = 0xff;
  regs.dac.fill(0);
  for (let i = 0; i < 64; i++) {
    // EGA colour bits: 0-2 blue, green, red at 2/3; 3-5 the same at 1/3 (6-bit DAC values)
    regs.dac[i * 3] = ((i >> 2) & 1) * 42 + ((i >> 5) & 1) * 21;
    regs.dac[i * 3 + 1] = ((i >> 1) & 1) * 42 + ((i >> 4) & 1) * 21;
    regs.dac[i * 3 + 2] = (i & 1) * 42 + ((i >> 3) & 1) * 21;
  }
  // the text buffer: planes 0 (characters) and 1 (attributes) of offsets 0..; the font: plane 2
  for (let off = 0; off < 0x4000 && (off << 2) + 3 < vram.length; off++) {
    vram[off << 2] = 0x20;
    vram[(off << 2) + 1] = 0x07;
  }
  for (let ch = 0; ch < 256; ch++) {
    for (let line = 0; line < GLYPH_STRIDE; line++) {
      const i = ((ch * GLYPH_STRIDE + line) << 2) + 2;
      if (i < vram.length) vram[i] = line < 16 ? font8x16[ch * 16 + line] : 0;
    }
  }
}

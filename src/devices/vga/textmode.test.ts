// Text mode 03h set without a VGA BIOS (for a direct Linux boot): the font
// found in SeaBIOS's VGA BIOS, and a screen that vgacon's writes to 0xB8000
// draw with that font.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { VgaHarness, MODE3 } from '../../../test/devices/vga-harness.js';
import { findFont8x16, setTextMode03h } from './textmode.js';

const SEABIOS_VGA = '/usr/share/seabios/vgabios-stdvga.bin';

/** A font whose glyph n is n in every row but the last 8 (a pattern to recognise on the screen). */
function patternFont(): Uint8Array {
  const f = new Uint8Array(4096);
  for (let ch = 0; ch < 256; ch++) for (let line = 0; line < 8; line++) f[ch * 16 + line] = ch;
  return f;
}

test("the 8x16 font is found in SeaBIOS's VGA BIOS (blank cell, smiling face, 'A'), and not in other bytes", () => {
  assert.ok(existsSync(SEABIOS_VGA), `${SEABIOS_VGA} is missing: tools/setup.sh installs Debian's seabios`);
  const font = findFont8x16(new Uint8Array(readFileSync(SEABIOS_VGA)));
  assert.ok(font);
  assert.equal(font.length, 4096);
  assert.deepEqual([...font.subarray(0, 16)], new Array(16).fill(0));
  // 'A' in the IBM VGA 8x16 font
  assert.deepEqual([...font.subarray(0x41 * 16, 0x42 * 16)], [0x00, 0x00, 0x10, 0x38, 0x6c, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00, 0x00, 0x00]);
  assert.equal(findFont8x16(new Uint8Array(65536).fill(0x55)), null);
});

test('setTextMode03h leaves the registers of mode 03h, an 80x25 blank text screen, and writes to 0xB8000 drawn with the font', () => {
  const h = new VgaHarness();
  setTextMode03h(h.vga.regs, h.vga.vram, patternFont());
  const r = h.vga.regs;
  assert.equal(r.misc, MODE3.misc);
  assert.deepEqual([...r.seq.subarray(1, 5)], MODE3.seq);
  assert.deepEqual([...r.crtc], MODE3.crtc);
  assert.deepEqual([...r.gc], MODE3.gc);
  assert.deepEqual([...r.attr.subarray(0, 20)], MODE3.attr);
  assert.equal(h.vga.displayMode(), 'text');
  const blank = h.vga.renderText();
  assert.deepEqual([blank.cols, blank.rows], [80, 25]);
  assert.ok(blank.chars.every((row) => row === ' '.repeat(80)));
  // the kernel's writes: character and attribute words in the B8000 window (odd/even)
  h.writeb(0xb8000, 0x81);
  h.writeb(0xb8001, 0x0f); // white on black
  const screen = h.vga.renderText();
  assert.equal(screen.attrs[0], 0x0f);
  const px = h.vga.renderPixels();
  assert.deepEqual([px.width, px.height], [720, 400]);
  // the first scan line of the first cell: glyph 0x81 = 1000 0001, drawn white (EGA colour 0x3f) on black, 9 dots wide
  const dots = [];
  for (let x = 0; x < 9; x++) dots.push(px.rgba[x * 4] > 128 ? 1 : 0);
  assert.deepEqual(dots, [1, 0, 0, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual([...px.rgba.subarray(0, 3)], [255, 255, 255]);
});

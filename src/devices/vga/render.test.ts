// Rendering: text cells written at 0xB8000, text drawn with a plane-2 font,
// mode 13h and mode 12h pixels through the palette and DAC, and VBE modes
// set through the DISPI ports with pixels written to the linear framebuffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VgaHarness, MODE3, MODE12, MODE13 } from '../../../test/devices/vga-harness.js';
import type { PixelFrame } from './stdvga.js';

function pixel(f: PixelFrame, x: number, y: number): number[] {
  const o = (y * f.width + x) * 4;
  return [f.rgba[o], f.rgba[o + 1], f.rgba[o + 2], f.rgba[o + 3]];
}

function text(h: VgaHarness, row: number, col: number, s: string, attr: number): void {
  for (let i = 0; i < s.length; i++) {
    h.writeb(0xb8000 + (row * 80 + col + i) * 2, s.charCodeAt(i));
    h.writeb(0xb8000 + (row * 80 + col + i) * 2 + 1, attr);
  }
}

test('text mode 3: cells at 0xB8000 render as CP437 text with attributes and cursor', () => {
  const h = new VgaHarness();
  h.setMode(MODE3);
  text(h, 0, 0, 'Hello', 0x1f);
  text(h, 24, 79, '!', 0x4e);
  h.writeb(0xb8000 + 2 * 80, 0xc9); // box corner
  h.writeb(0xb8000 + 2 * 81, 0x01); // smiley
  h.crtc(0x0e, 0x00);
  h.crtc(0x0f, 162); // row 2, column 2
  const t = h.vga.renderText();
  assert.equal(t.cols, 80);
  assert.equal(t.rows, 25);
  assert.equal(t.chars[0].slice(0, 5), 'Hello');
  assert.equal(t.chars[1].slice(0, 2), '╔☺');
  assert.equal(t.chars[24][79], '!');
  assert.equal(t.attrs[0], 0x1f);
  assert.equal(t.attrs[24 * 80 + 79], 0x4e);
  assert.deepEqual(t.cursor, { x: 2, y: 2, visible: true });
  h.crtc(0x0a, 0x20);
  assert.equal(h.vga.renderText().cursor.visible, false);
  // Start address scrolls the view.
  h.crtc(0x0c, 0x00);
  h.crtc(0x0d, 80);
  assert.equal(h.vga.renderText().chars[0].slice(0, 2), '╔☺');
});

test('text geometry follows the CRTC: 80x50 and 40x25', () => {
  const h = new VgaHarness();
  h.setMode(MODE3);
  h.crtc(0x09, 0x47); // 8-line characters
  let t = h.vga.renderText();
  assert.equal(t.rows, 50);
  h.crtc(0x09, 0x4f);
  h.crtc(0x01, 0x27);
  assert.equal(h.vga.renderText().cols, 80, 'CR1 is write protected by CR11 bit 7');
  h.crtc(0x11, 0x0e);
  h.crtc(0x01, 0x27);
  h.crtc(0x13, 0x14);
  h.writeb(0xb8000 + 40 * 2, 0x5a);
  t = h.vga.renderText();
  assert.equal(t.cols, 40);
  assert.equal(t.chars[1][0], 'Z');
});

test('text pixels: glyph from plane 2, 9-dot cells, palette and DAC colours', () => {
  const h = new VgaHarness();
  h.setMode(MODE3);
  const rows = new Array<number>(16).fill(0);
  rows[0] = 0x81;
  h.loadFont(new Map([[0x41, rows], [0xc4, new Array<number>(16).fill(0x01)]]));
  h.dac(1, 0, 0, 42);
  h.dac(0x3f, 63, 63, 63);
  h.writeb(0xb8000, 0x41);
  h.writeb(0xb8001, 0x1f); // white on blue
  h.writeb(0xb8002, 0xc4); // line-graphics char: 9th column repeats the 8th
  h.writeb(0xb8003, 0x1f);
  h.crtc(0x0a, 0x20); // cursor off
  const f = h.vga.renderPixels();
  assert.equal(f.width, 720);
  assert.equal(f.height, 400);
  assert.deepEqual(pixel(f, 0, 0), [255, 255, 255, 255]);
  assert.deepEqual(pixel(f, 1, 0), [0, 0, 170, 255]);
  assert.deepEqual(pixel(f, 7, 0), [255, 255, 255, 255]);
  assert.deepEqual(pixel(f, 8, 0), [0, 0, 170, 255], 'ninth column is background');
  assert.deepEqual(pixel(f, 9 + 8, 5), [255, 255, 255, 255], 'line graphics repeat');
  assert.deepEqual(pixel(f, 0, 1), [0, 0, 170, 255]);
  assert.equal(h.vga.displayMode(), 'text');
});

test('text pixels: blanked while the attribute PAS bit is clear', () => {
  const h = new VgaHarness();
  h.setMode(MODE3);
  h.dac(0, 10, 10, 10);
  h.inb(0x3da);
  h.outb(0x3c0, 0x00);
  assert.equal(h.vga.displayMode(), 'blank');
  assert.deepEqual(pixel(h.vga.renderPixels(), 0, 0), [0, 0, 0, 255]);
  h.outb(0x3c0, 0); // data
  h.outb(0x3c0, 0x20);
  assert.deepEqual(pixel(h.vga.renderPixels(), 0, 0), [40, 40, 40, 255]);
});

test('mode 13h: chain-4 bytes through the DAC, 320x200', () => {
  const h = new VgaHarness();
  h.setMode(MODE13);
  h.dac(5, 63, 0, 0);
  h.dac(200, 0, 32, 63);
  h.writeb(0xa0000 + 320 * 10 + 7, 5);
  h.writeb(0xa0000 + 320 * 199 + 319, 200);
  const f = h.vga.renderPixels();
  assert.equal(h.vga.displayMode(), 'graphics');
  assert.equal(f.width, 320);
  assert.equal(f.height, 200);
  assert.deepEqual(pixel(f, 7, 10), [255, 0, 0, 255]);
  assert.deepEqual(pixel(f, 6, 10), [0, 0, 0, 255]);
  assert.deepEqual(pixel(f, 319, 199), [0, 130, 255, 255]);
  h.outb(0x3c6, 0x01); // pixel mask: 5 & 1 = 1
  h.dac(1, 0, 63, 0);
  assert.deepEqual(pixel(h.vga.renderPixels(), 7, 10), [0, 255, 0, 255]);
});

test('mode 12h: planar pixels through the attribute palette, 640x480', () => {
  const h = new VgaHarness();
  h.setMode(MODE12);
  h.dac(0x39, 21, 42, 63); // attribute 9 -> DAC 0x39
  h.gc(5, 0x02); // write mode 2
  h.gc(8, 0x80);
  h.readb(0xa0000 + 80 * 3);
  h.writeb(0xa0000 + 80 * 3, 9); // pixel (0, 3) = colour 9
  const f = h.vga.renderPixels();
  assert.equal(f.width, 640);
  assert.equal(f.height, 480);
  assert.deepEqual(pixel(f, 0, 3), [85, 170, 255, 255]);
  assert.deepEqual(pixel(f, 1, 3), [0, 0, 0, 255]);
  h.attr(0x12, 0x07); // colour plane enable drops plane 3: 9 -> 1
  h.dac(0x01, 63, 63, 0);
  assert.deepEqual(pixel(h.vga.renderPixels(), 0, 3), [255, 255, 0, 255]);
});

test('mode 12h: line-compare split screen, start address and pixel panning', () => {
  const h = new VgaHarness();
  h.setMode(MODE12);
  h.dac(0x3f, 63, 63, 63);
  h.writeb(0xa0000 + 80 * 0, 0x80); // memory line 0: pixel 0 white (colour 15 in all planes)
  h.writeb(0xa0000 + 80 * 10, 0x10); // memory line 10: pixel 3 white
  h.crtc(0x0c, (80 * 10) >> 8);
  h.crtc(0x0d, (80 * 10) & 0xff); // display starts at memory line 10
  h.crtc(0x18, 99); // split after scan line 99
  h.crtc(0x07, 0x3e & ~0x10); // CR7 bit 4 stays writable under CR11 protection
  h.crtc(0x09, 0x00);
  let f = h.vga.renderPixels();
  const white = [255, 255, 255, 255];
  assert.deepEqual(pixel(f, 3, 0), white, 'top shows memory line 10');
  assert.deepEqual(pixel(f, 0, 100), white, 'below the split shows memory line 0');
  assert.deepEqual(pixel(f, 0, 99), [0, 0, 0, 255]);
  h.attr(0x13, 3); // pan left by 3 pixels
  f = h.vga.renderPixels();
  assert.deepEqual(pixel(f, 0, 0), white);
  assert.deepEqual(pixel(f, 0, 100), [0, 0, 0, 255], 'the split part pans too');
  h.attr(0x10, 0x21); // pixel panning mode: no panning below the split
  f = h.vga.renderPixels();
  assert.deepEqual(pixel(f, 0, 0), white);
  assert.deepEqual(pixel(f, 0, 100), white);
});

test('VBE: identification, capabilities and video memory size', () => {
  const h = new VgaHarness({ vramBytes: 16 * 1024 * 1024 });
  assert.equal(h.dispiRead(0), 0xb0c5);
  h.dispi(0, 0xb0c0);
  assert.equal(h.dispiRead(0), 0xb0c0);
  h.dispi(0, 0x1234);
  assert.equal(h.dispiRead(0), 0xb0c0, 'unknown ids are ignored');
  assert.equal(h.dispiRead(0xa), 256);
  h.dispi(4, 0x02); // GETCAPS
  assert.equal(h.dispiRead(1), 16000);
  assert.equal(h.dispiRead(3), 32);
  h.dispi(4, 0x00);
  assert.equal(h.dispiRead(3), 8);
  h.outw(0x1ce, 1);
  h.outw(0x1d0, 800); // the alternate data port
  assert.equal(h.dispiRead(1), 800);
});

test('VBE 32 bpp: mode set, then linear framebuffer writes render', () => {
  const h = new VgaHarness({ vramBytes: 16 * 1024 * 1024 });
  const lfb = 0xe0000000;
  h.vga.onBarChange(0, lfb, 16 * 1024 * 1024);
  h.dispi(3, 32);
  h.dispi(1, 640);
  h.dispi(2, 480);
  h.dispi(4, 0x41); // enabled + LFB
  assert.equal(h.vga.displayMode(), 'vbe');
  const o = (2 * 640 + 3) * 4;
  h.vga.lfbHandlers.write8(lfb + o, 0x10); // B
  h.vga.lfbHandlers.write8(lfb + o + 1, 0x20); // G
  h.vga.lfbHandlers.write8(lfb + o + 2, 0x30); // R
  assert.equal(h.vga.lfbHandlers.read8(lfb + o + 2), 0x30);
  let f = h.vga.renderPixels();
  assert.equal(f.width, 640);
  assert.equal(f.height, 480);
  assert.deepEqual(pixel(f, 3, 2), [0x30, 0x20, 0x10, 255]);
  // Panning with Y_OFFSET moves the view down the virtual screen.
  assert.equal(h.dispiRead(6), 640);
  h.dispi(9, 2);
  f = h.vga.renderPixels();
  assert.deepEqual(pixel(f, 3, 0), [0x30, 0x20, 0x10, 255]);
});

test('VBE 16 and 8 bpp; banked access through the A0000 window; clear on enable', () => {
  const h = new VgaHarness({ vramBytes: 16 * 1024 * 1024 });
  h.vga.vram[100] = 0x99;
  h.dispi(3, 16);
  h.dispi(1, 1024);
  h.dispi(2, 768);
  h.dispi(4, 0x01);
  assert.equal(h.vga.vram[100], 0, 'enable clears memory');
  h.dispi(5, 1); // bank 1
  h.writeb(0xa0000, 0x00);
  h.writeb(0xa0001, 0xf8); // red 5:6:5 at byte 0x10000 = pixel 32768
  assert.equal(h.vga.vram[0x10001], 0xf8);
  assert.equal(h.readb(0xa0001), 0xf8);
  let f = h.vga.renderPixels();
  assert.deepEqual(pixel(f, 32768 % 1024, Math.floor(32768 / 1024)), [255, 0, 0, 255]);
  h.dispi(4, 0x00);
  h.dispi(3, 8);
  h.dispi(1, 640);
  h.dispi(2, 480);
  h.dispi(4, 0x81); // NOCLEARMEM
  assert.equal(h.vga.vram[0x10001], 0xf8, 'NOCLEARMEM keeps memory');
  h.dac(0xf8, 0, 63, 0);
  f = h.vga.renderPixels();
  const p = 0x10001;
  assert.deepEqual(pixel(f, p % 640, Math.floor(p / 640)), [0, 255, 0, 255]);
  h.dispi(4, 0x21); // 8-bit DAC
  h.dac(0xf8, 0x80, 0x40, 0x20);
  assert.deepEqual(pixel(h.vga.renderPixels(), p % 640, Math.floor(p / 640)), [0x80, 0x40, 0x20, 255]);
});

test('VBE values are fixed up so a mode always fits in video memory', () => {
  const h = new VgaHarness({ vramBytes: 1024 * 1024 });
  h.dispi(3, 7); // not a depth
  h.dispi(1, 4001);
  h.dispi(2, 9999);
  h.dispi(4, 0x01);
  assert.equal(h.dispiRead(3), 8);
  assert.equal(h.dispiRead(1), 4008);
  assert.ok(h.dispiRead(2) * 4008 <= 1024 * 1024);
  const f = h.vga.renderPixels();
  assert.equal(f.width * f.height <= 1024 * 1024, true);
});

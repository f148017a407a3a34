// Plane writes and reads through the legacy window, against values worked
// out by hand from the IBM VGA write/read mode descriptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VgaHarness, MODE12 } from '../../../test/devices/vga-harness.js';

const A0000 = 0xa0000;

/** The four plane bytes at plane offset `off` (compact interleaved layout). */
function planes(h: VgaHarness, off: number): number[] {
  const v = h.vga.vram;
  return [v[off * 4], v[off * 4 + 1], v[off * 4 + 2], v[off * 4 + 3]];
}

/** Put bytes into the four planes at `off` with map-mask writes (write mode 0, neutral). */
function fill(h: VgaHarness, off: number, bytes: number[]): void {
  for (let p = 0; p < 4; p++) {
    h.seq(2, 1 << p);
    h.writeb(A0000 + off, bytes[p]);
  }
  h.seq(2, 0x0f);
}

function planar(): VgaHarness {
  const h = new VgaHarness();
  h.setMode(MODE12);
  return h;
}

test('write mode 0: byte to every enabled plane; map mask selects planes', () => {
  const h = planar();
  h.writeb(A0000, 0xa5);
  assert.deepEqual(planes(h, 0), [0xa5, 0xa5, 0xa5, 0xa5]);
  h.seq(2, 0x06);
  h.writeb(A0000 + 1, 0x3c);
  assert.deepEqual(planes(h, 1), [0x00, 0x3c, 0x3c, 0x00]);
});

test('write mode 0: set/reset, enable set/reset, rotate, bit mask, logical functions', () => {
  const h = planar();
  h.gc(0, 0x05);
  h.gc(1, 0x0f);
  h.writeb(A0000, 0x12);
  assert.deepEqual(planes(h, 0), [0xff, 0x00, 0xff, 0x00], 'set/reset for all planes');
  h.gc(1, 0x03);
  h.writeb(A0000 + 1, 0x3c);
  assert.deepEqual(planes(h, 1), [0xff, 0x00, 0x3c, 0x3c], 'planes 2-3 take CPU data');
  h.gc(1, 0);
  h.gc(3, 0x01); // rotate right by 1
  h.writeb(A0000 + 2, 0x01);
  assert.deepEqual(planes(h, 2), [0x80, 0x80, 0x80, 0x80]);
  h.gc(3, 0);
  // Bit mask keeps latched bits.
  fill(h, 3, [0x11, 0x22, 0x33, 0x44]);
  h.readb(A0000 + 3); // load latches
  h.gc(8, 0xf0);
  h.writeb(A0000 + 3, 0x00);
  assert.deepEqual(planes(h, 3), [0x01, 0x02, 0x03, 0x04]);
  h.gc(8, 0xff);
  // AND, OR, XOR with the latches.
  fill(h, 4, [0xf0, 0xf0, 0x0f, 0x0f]);
  h.readb(A0000 + 4);
  h.gc(3, 0x08);
  h.writeb(A0000 + 4, 0x3c);
  assert.deepEqual(planes(h, 4), [0x30, 0x30, 0x0c, 0x0c], 'AND');
  fill(h, 5, [0xf0, 0xf0, 0x0f, 0x0f]);
  h.readb(A0000 + 5);
  h.gc(3, 0x10);
  h.writeb(A0000 + 5, 0x3c);
  assert.deepEqual(planes(h, 5), [0xfc, 0xfc, 0x3f, 0x3f], 'OR');
  fill(h, 6, [0xf0, 0xf0, 0x0f, 0x0f]);
  h.readb(A0000 + 6);
  h.gc(3, 0x18);
  h.writeb(A0000 + 6, 0x3c);
  assert.deepEqual(planes(h, 6), [0xcc, 0xcc, 0x33, 0x33], 'XOR');
});

test('write mode 1 copies the latches, ignoring data and bit mask', () => {
  const h = planar();
  fill(h, 10, [0xde, 0xad, 0xbe, 0xef]);
  h.readb(A0000 + 10);
  h.gc(5, 0x01);
  h.gc(8, 0x00);
  h.writeb(A0000 + 20, 0x00);
  assert.deepEqual(planes(h, 20), [0xde, 0xad, 0xbe, 0xef]);
});

test('write mode 2: colour nibble expanded to planes, through the bit mask', () => {
  const h = planar();
  h.gc(5, 0x02);
  h.writeb(A0000, 0x0a);
  assert.deepEqual(planes(h, 0), [0x00, 0xff, 0x00, 0xff]);
  fill(h, 1, [0, 0, 0, 0]);
  h.gc(5, 0x02);
  h.readb(A0000 + 1);
  h.gc(8, 0x81);
  h.writeb(A0000 + 1, 0x0c);
  assert.deepEqual(planes(h, 1), [0x00, 0x00, 0x81, 0x81]);
});

test('write mode 3: rotated data ANDed with the bit mask, colour from set/reset', () => {
  const h = planar();
  fill(h, 0, [0x0f, 0x0f, 0x0f, 0x0f]);
  h.readb(A0000);
  h.gc(5, 0x03);
  h.gc(0, 0x0c);
  h.gc(8, 0xf0);
  h.writeb(A0000, 0x3c); // effective mask 0x30
  assert.deepEqual(planes(h, 0), [0x0f, 0x0f, 0x3f, 0x3f]);
});

test('read mode 0 selects a plane; read mode 1 compares colours', () => {
  const h = planar();
  fill(h, 7, [0xf0, 0xcc, 0xaa, 0x00]);
  for (let p = 0; p < 4; p++) {
    h.gc(4, p);
    assert.equal(h.readb(A0000 + 7), [0xf0, 0xcc, 0xaa, 0x00][p]);
  }
  h.gc(5, 0x08);
  h.gc(2, 0x03); // colour 3: planes 0 and 1 set, 2 and 3 clear
  h.gc(7, 0x0f);
  assert.equal(h.readb(A0000 + 7), 0xf0 & 0xcc & ~0xaa & 0xff);
  h.gc(7, 0x03); // planes 2 and 3 don't care
  assert.equal(h.readb(A0000 + 7), 0xc0);
});

test('chain-4: CPU address picks the plane, bytes are linear', () => {
  const h = new VgaHarness();
  h.seq(2, 0x0f);
  h.seq(4, 0x0e);
  h.gc(8, 0xff);
  h.gc(5, 0x40);
  h.gc(6, 0x05);
  for (let i = 0; i < 8; i++) h.writeb(A0000 + i, 0x10 + i);
  assert.deepEqual([...h.vga.vram.subarray(0, 8)], [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
  assert.equal(h.readb(A0000 + 5), 0x15);
  h.seq(2, 0x01); // map mask still applies: only plane 0 (addresses 0 mod 4)
  h.writeb(A0000 + 9, 0xee);
  h.writeb(A0000 + 8, 0xdd);
  assert.equal(h.vga.vram[9], 0);
  assert.equal(h.vga.vram[8], 0xdd);
});

test('odd/even: even addresses to plane 0, odd to plane 1, at B8000', () => {
  const h = new VgaHarness();
  h.seq(2, 0x03);
  h.seq(4, 0x02);
  h.gc(8, 0xff);
  h.gc(5, 0x10);
  h.gc(6, 0x0e);
  h.writeb(0xb8000, 0x41);
  h.writeb(0xb8001, 0x1f);
  h.writeb(0xb8002, 0x42);
  assert.deepEqual(planes(h, 0), [0x41, 0x1f, 0, 0]);
  assert.deepEqual(planes(h, 1), [0x42, 0, 0, 0]);
  assert.equal(h.readb(0xb8001), 0x1f);
  assert.equal(h.readb(0xa0000), 0xff, 'outside the B8000 map');
  h.writeb(0xa0000, 0x55);
  assert.deepEqual(planes(h, 0), [0x41, 0x1f, 0, 0], 'writes outside the map are dropped');
});

test('memory map select: A0000 128K, B0000 32K windows', () => {
  const h = planar();
  h.gc(6, 0x01); // A0000-BFFFF
  h.writeb(0xb0000, 0x77); // plane offsets are 16 bits: wraps to offset 0
  assert.deepEqual(planes(h, 0), [0x77, 0x77, 0x77, 0x77]);
  h.gc(6, 0x09); // B0000 32K
  assert.equal(h.readb(0xb8000), 0xff);
  h.writeb(0xb0001, 0x66);
  assert.equal(planes(h, 1)[0], 0x66);
});

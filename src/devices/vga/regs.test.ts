// VGA register file through its I/O ports: index/data pairs, write masks,
// the attribute flip-flop, colour/mono decoding, the DAC and Input Status 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VgaHarness } from '../../../test/devices/vga-harness.js';
import { FRAME_NS, LINE_NS } from './regs.js';

test('sequencer and graphics controller: index read-back and reserved bits', () => {
  const h = new VgaHarness();
  h.outb(0x3c4, 0x02);
  h.outb(0x3c5, 0xff);
  assert.equal(h.inb(0x3c4), 0x02);
  assert.equal(h.inb(0x3c5), 0x0f, 'map mask has 4 bits');
  h.outb(0x3c4, 0x0c); // index wraps to 3 bits
  assert.equal(h.inb(0x3c4), 0x04);
  h.outw(0x3ce, 0xff05); // word write: index then data
  assert.equal(h.inb(0x3ce), 0x05);
  assert.equal(h.inb(0x3cf), 0x7b, 'graphics mode bits 2 and 7 are reserved');
  h.gc(8, 0x5a);
  h.outb(0x3ce, 8);
  assert.equal(h.inb(0x3cf), 0x5a);
});

test('attribute controller: flip-flop, reset by reading input status 1, PAS bit', () => {
  const h = new VgaHarness();
  h.outb(0x3c2, 0x01); // colour I/O
  h.inb(0x3da);
  h.outb(0x3c0, 0x05); // index
  h.outb(0x3c0, 0xff); // data: palette registers are 6 bits
  assert.equal(h.inb(0x3c0), 0x05, 'address register reads back the index');
  assert.equal(h.inb(0x3c1), 0x3f);
  h.outb(0x3c0, 0x25); // flip-flop is back at index: PAS set
  assert.equal(h.inb(0x3c0), 0x25);
  h.outb(0x3c0, 0x11); // now a data write to register 5
  assert.equal(h.inb(0x3c1), 0x11);
  h.inb(0x3da); // reset: next write is an index again
  h.outb(0x3c0, 0x30); // index 0x10 with PAS
  h.outb(0x3c0, 0xff);
  assert.equal(h.inb(0x3c1), 0xef, 'mode control bit 4 is reserved');
});

test('CRTC and input status 1 move between 0x3Dx and 0x3Bx with misc output bit 0', () => {
  const h = new VgaHarness();
  h.outb(0x3c2, 0x67);
  assert.equal(h.inb(0x3cc), 0x67);
  h.crtc(0x0e, 0x12);
  h.outb(0x3d4, 0x0e);
  assert.equal(h.inb(0x3d5), 0x12);
  assert.equal(h.inb(0x3b5), 0xff, 'mono CRTC is not decoded in colour mode');
  assert.equal(h.inb(0x3ba), 0xff);
  h.outb(0x3c2, 0x66); // mono
  assert.equal(h.inb(0x3d5), 0xff);
  h.outb(0x3b4, 0x0e);
  assert.equal(h.inb(0x3b5), 0x12);
  h.outb(0x3b5, 0x34);
  h.outb(0x3c2, 0x67);
  h.outb(0x3d4, 0x0e);
  assert.equal(h.inb(0x3d5), 0x34);
});

test('CRTC write protect covers CR0-CR7 except the line compare bit of CR7', () => {
  const h = new VgaHarness();
  h.outb(0x3c2, 0x01);
  h.crtc(0x01, 0x4f);
  h.crtc(0x07, 0x00);
  h.crtc(0x11, 0x80);
  h.crtc(0x01, 0x27);
  h.crtc(0x07, 0xff);
  h.crtc(0x0c, 0x12); // not protected
  h.outb(0x3d4, 0x01);
  assert.equal(h.inb(0x3d5), 0x4f);
  h.outb(0x3d4, 0x07);
  assert.equal(h.inb(0x3d5), 0x10);
  h.outb(0x3d4, 0x0c);
  assert.equal(h.inb(0x3d5), 0x12);
});

test('DAC: write and read indices auto-increment per triple; 6-bit reads; state register', () => {
  const h = new VgaHarness();
  h.outb(0x3c8, 0xff);
  for (const v of [1, 2, 3, 4, 5, 6]) h.outb(0x3c9, v); // entries 255 and 0 (wraps)
  assert.equal(h.inb(0x3c8), 1, 'write index advanced twice with wrap');
  assert.equal(h.inb(0x3c7), 0x00, 'write mode');
  h.outb(0x3c7, 0xff);
  assert.equal(h.inb(0x3c7), 0x03, 'read mode');
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => h.inb(0x3c9)), [1, 2, 3, 4, 5, 6]);
  h.dac(7, 0xff, 0x40, 0x3f);
  h.outb(0x3c7, 7);
  assert.deepEqual([h.inb(0x3c9), h.inb(0x3c9), h.inb(0x3c9)], [0x3f, 0x00, 0x3f], '6-bit DAC reads 6 bits');
  h.outb(0x3c6, 0x0f);
  assert.equal(h.inb(0x3c6), 0x0f);
});

test('input status 1: display enable and vertical retrace follow guest time', () => {
  const h = new VgaHarness();
  h.outb(0x3c2, 0x01);
  h.clock.advanceTo(FRAME_NS * 3 + 10);
  assert.equal(h.inb(0x3da) & 0x09, 0x00, 'top of frame: displaying');
  h.clock.advanceTo(FRAME_NS * 3 + LINE_NS * 100 + LINE_NS - 100);
  assert.equal(h.inb(0x3da) & 0x09, 0x01, 'horizontal blanking');
  h.clock.advanceTo(FRAME_NS * 4 + LINE_NS * 490 + 50);
  assert.equal(h.inb(0x3da) & 0x09, 0x09, 'vertical retrace');
  h.clock.advanceTo(FRAME_NS * 4 + LINE_NS * 500);
  assert.equal(h.inb(0x3da) & 0x09, 0x01, 'vertical blanking after retrace');
});

test('input status 1: a retrace-wait loop ends even if the clock does not move', () => {
  const h = new VgaHarness();
  h.outb(0x3c2, 0x01);
  let reads = 0;
  while (h.inb(0x3da) & 0x08) reads++; // wait for retrace to end
  while (!(h.inb(0x3da) & 0x08)) {
    reads++;
    assert.ok(reads < 100_000, 'polling must end');
  }
  assert.ok(reads > 0);
});

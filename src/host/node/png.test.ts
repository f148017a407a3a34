// PNG encoder: a screenshot of an emulated mode 13h screen, decoded back with
// a small PNG reader (chunk walk, CRC check, zlib inflateSync, unfilter).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { crc32, encodePng } from './png.js';
import { VgaHarness, MODE13 } from '../../../test/devices/vga-harness.js';

interface Decoded {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** Decode an 8-bit RGBA, non-interlaced PNG whose rows all use filter 0. */
function decodePng(png: Buffer): Decoded {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let pos = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (;;) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    assert.equal(png.readUInt32BE(pos + 8 + len), crc32(png.subarray(pos + 4, pos + 8 + len)), `${type} CRC`);
    pos += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.deepEqual([...data.subarray(8)], [8, 6, 0, 0, 0]);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  assert.equal(raw.length, (stride + 1) * height);
  const rgba = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (stride + 1)], 0, 'filter type 0');
    rgba.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, rgba };
}

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});

test('a rendered VGA frame survives PNG encoding', () => {
  const h = new VgaHarness();
  h.setMode(MODE13);
  h.dac(9, 63, 32, 0);
  h.writeb(0xa0000 + 320 * 50 + 100, 9);
  const f = h.vga.renderPixels();
  const d = decodePng(encodePng(f.width, f.height, f.rgba));
  assert.equal(d.width, 320);
  assert.equal(d.height, 200);
  const o = (50 * 320 + 100) * 4;
  assert.deepEqual([...d.rgba.subarray(o, o + 4)], [255, 130, 0, 255]);
  assert.deepEqual([...d.rgba.subarray(0, 4)], [0, 0, 0, 255]);
});

test('encodePng rejects pixel data of the wrong size', () => {
  assert.throws(() => encodePng(2, 2, new Uint8Array(15)), RangeError);
  assert.throws(() => encodePng(0, 2, new Uint8Array(0)), RangeError);
});

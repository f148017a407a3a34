/**
 * A small PNG encoder for screenshots of the emulated display: 8-bit RGBA,
 * no interlace, filter type 0 on every row, one IDAT chunk compressed with
 * zlib (node:zlib deflateSync).
 *
 * Reference: PNG Specification, Second Edition (W3C / ISO 15948): signature
 * (5.2), chunk layout and CRC-32 (5.3, 5.5), IHDR (11.2.2), IDAT (11.2.4),
 * IEND (11.2.5), filtering (9).
 */
import { deflateSync } from 'node:zlib';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IHDR_BYTES = 13;
const BIT_DEPTH_8 = 8;
const COLOR_TYPE_RGBA = 6;
const FILTER_NONE = 0;
/** Reflected CRC-32 polynomial (ISO 3309 / ITU-T V.42), as PNG uses. */
const CRC32_POLY = 0xedb88320;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? CRC32_POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `data` (continuing from `crc`, which starts at 0). */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encode `width` x `height` RGBA pixels (4 bytes each, row-major) as a PNG file. */
export function encodePng(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size ${width}x${height} is not at least 1x1`);
  }
  if (rgba.length !== width * height * 4) {
    throw new RangeError(`PNG pixel data is ${rgba.length} bytes, not ${width}x${height}x4`);
  }
  const ihdr = Buffer.alloc(IHDR_BYTES);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = BIT_DEPTH_8;
  ihdr[9] = COLOR_TYPE_RGBA;
  // bytes 10-12: compression 0 (deflate), filter method 0, no interlace
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = FILTER_NONE;
    raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return Buffer.concat([Buffer.from(PNG_SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

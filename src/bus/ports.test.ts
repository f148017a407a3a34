import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts, PortConflictError } from './ports.js';

test('unmapped ports read all-ones, ignore writes and are counted', () => {
  const io = new IoPorts();
  assert.equal(io.read8[0x1234](0x1234), 0xff);
  assert.equal(io.read16[0x1234](0x1234), 0xffff);
  assert.equal(io.read32[0xfffe](0xfffe), 0xffffffff);
  io.write32[0x80](0x80, 0x12345678);
  assert.equal(io.missedReads, 1 + 2 + 4);
  assert.equal(io.missedWrites, 4);
});

test('wide accesses to byte-only ports are split into byte accesses on consecutive ports', () => {
  const io = new IoPorts();
  const regs = new Uint8Array(8);
  io.register('dev', 0x300, 8, { read8: (p) => regs[p - 0x300]!, write8: (p, v) => (regs[p - 0x300] = v) });
  io.write32[0x302](0x302, 0xa1b2c3d4);
  assert.deepEqual([...regs], [0, 0, 0xd4, 0xc3, 0xb2, 0xa1, 0, 0]);
  assert.equal(io.read16[0x303](0x303), 0xb2c3);
  assert.equal(io.read32[0x302](0x302), 0xa1b2c3d4);
});

test("a device's own 16-bit registers serve the halves of a 32-bit access", () => {
  const io = new IoPorts();
  const seen: number[] = [];
  io.register('dev', 0x1f0, 4, { read8: () => 0x11, read16: (p) => { seen.push(p); return p; } });
  assert.equal(io.read32[0x1f0](0x1f0), ((0x1f2 << 16) | 0x1f0) >>> 0);
  assert.deepEqual(seen, [0x1f0, 0x1f2]);
});

test('unregister gives the ports back, splitting again; overlapping owners are refused', () => {
  const io = new IoPorts();
  io.register('a', 0x60, 2, { read8: () => 1, read16: () => 0x4242 });
  assert.throws(() => io.register('b', 0x61, 1, { read8: () => 2 }), PortConflictError);
  io.unregister('a', 0x60, 2);
  io.register('b', 0x61, 1, { read8: () => 2 });
  assert.equal(io.read16[0x60](0x60), 0x02ff);
  assert.equal(io.ownerOf(0x61), 'b');
  assert.equal(io.ownerOf(0x60), null);
});

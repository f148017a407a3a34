import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from './memory.js';
import { ArrayDmaView, PhysicalMemoryDmaView } from './dma.js';

test('PhysicalMemoryDmaView: RAM across pages, ROM ignores writes, MMIO goes to its handler, bounds', () => {
  const m = new PhysicalMemory(1 << 20);
  const rom = new Uint8Array(4096).fill(0xaa);
  m.addRom(0xfffff000, rom);
  const mmio: number[] = [];
  m.addMmio(0xfee00000, 4096, { read8: (a) => a & 0xff, write8: (a, v) => mmio.push(a, v) });
  const d = new PhysicalMemoryDmaView(m);
  const src = Uint8Array.from({ length: 6000 }, (_, i) => i & 0xff);
  assert.ok(d.write(0x0ff0, src));
  const back = new Uint8Array(6000);
  assert.ok(d.read(0x0ff0, back));
  assert.deepEqual(back, src);
  assert.ok(d.write(0xfffff000, Uint8Array.of(1, 2)));
  const r = new Uint8Array(2);
  d.read(0xfffff000, r);
  assert.deepEqual([...r], [0xaa, 0xaa]);
  assert.ok(d.write(0xfee00010, Uint8Array.of(7)));
  assert.deepEqual(mmio, [0xfee00010, 7]);
  d.read(0xfee00020, r);
  assert.deepEqual([...r], [0x20, 0x21]);
  assert.equal(d.read(0xffffffff, r), false, 'crosses 4 GiB');
  assert.equal(d.write(-1, r), false);
  assert.equal(d.read(0.5, r), false);
});

test('ArrayDmaView bounds', () => {
  const d = new ArrayDmaView(new Uint8Array(16));
  assert.ok(d.write(14, Uint8Array.of(1, 2)));
  assert.equal(d.write(15, Uint8Array.of(1, 2)), false);
});

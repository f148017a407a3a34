// Virtio on the PC board: BARs the guest programs decode in the physical
// memory map, an MSI-X message reaches the local APIC's IRR, and a machine
// saved with a live virtio queue restores into a fresh machine and goes on
// identically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from './machine.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { SeededEntropy } from '../../test/devices/virtio-harness.js';

const BAR4 = 0xfebf0000;
const BAR1 = 0xfebf4000;
const RING = 0x10000;
const BUF = 0x20000;
const VECTOR = 0x51;

/** A 64 KiB ROM that stops at once (cli; hlt at the reset vector). */
function haltRom(): Uint8Array {
  const rom = new Uint8Array(0x10000);
  rom.set([0xfa, 0xf4], 0xfff0);
  return rom;
}

function machine(skipEntropy = 0): Machine {
  const src = new SeededEntropy(3);
  src.fill(new Uint8Array(skipEntropy));
  return new Machine({ memoryBytes: 16 << 20, bios: haltRom(), virtio: [new VirtioRng('virtio-rng0', src)] });
}

/** Set the device up as a driver would, through configuration space and MMIO. */
function driverInit(m: Machine): void {
  const t = m.virtio[0];
  t.writeConfig(0x20, BAR4, 4);
  t.writeConfig(0x14, BAR1, 4);
  t.writeConfig(0x04, 0x6, 2);
  t.writeConfig(0x42, 0x8000, 2); // MSI-X enable
  const mem = m.mem;
  mem.write8(BAR4 + 0x14, 3);
  mem.write32(BAR4 + 0x08, 1);
  mem.write32(BAR4 + 0x0c, 1); // VERSION_1
  mem.write32(BAR4 + 0x08, 0);
  mem.write32(BAR4 + 0x0c, 0);
  mem.write8(BAR4 + 0x14, 0xb);
  mem.write16(BAR4 + 0x16, 0);
  mem.write16(BAR4 + 0x18, 16);
  mem.write32(BAR4 + 0x20, RING);
  mem.write32(BAR4 + 0x28, RING + 0x100);
  mem.write32(BAR4 + 0x30, RING + 0x200);
  mem.write16(BAR4 + 0x1a, 1);
  mem.write16(BAR4 + 0x1c, 1);
  mem.write32(BAR1 + 16, 0xfee00000); // vector 1 -> APIC 0, fixed
  mem.write32(BAR1 + 24, VECTOR);
  mem.write32(BAR1 + 28, 0); // unmask
  mem.write8(BAR4 + 0x14, 0xf);
}

/** Post one 16-byte writable buffer and kick the queue. */
function request(m: Machine, n: number): void {
  const mem = m.mem;
  mem.write32(RING + 16 * n, BUF + 16 * n);
  mem.write32(RING + 16 * n + 4, 0);
  mem.write32(RING + 16 * n + 8, 16);
  mem.write16(RING + 16 * n + 12, 2);
  mem.write16(RING + 0x100 + 4 + 2 * n, n);
  mem.write16(RING + 0x100 + 2, n + 1);
  mem.write16(BAR4 + 0x3000, 0);
}

function irrHas(m: Machine, v: number): boolean {
  return ((m.mem.read32(0xfee00200 + 0x10 * (v >>> 5)) >>> (v & 31)) & 1) === 1;
}

test('virtio on the board: BARs decode where programmed, MSI-X reaches the local APIC', () => {
  const m = machine();
  assert.equal(m.mem.read16(BAR4 + 0x12), 0xffff, 'nothing decodes before the BAR is set');
  driverInit(m);
  assert.equal(m.mem.read16(BAR4 + 0x12), 1, 'num_queues through the BAR');
  request(m, 0);
  assert.equal(m.mem.read16(RING + 0x200 + 2), 1, 'used idx');
  const expect = new Uint8Array(16);
  new SeededEntropy(3).fill(expect);
  assert.deepEqual(m.mem.mem.subarray(BUF, BUF + 16), expect);
  assert.ok(irrHas(m, VECTOR), 'the MSI-X vector is pending in the local APIC');
  // moving the BAR moves the registers
  m.virtio[0].writeConfig(0x20, 0xfeb00000, 4);
  assert.equal(m.mem.read16(0xfeb00000 + 0x12), 1);
  assert.equal(m.mem.read16(BAR4 + 0x12), 0xffff);
});

test('virtio on the board: save with a live queue, load into a fresh machine, continue identically', () => {
  const a = machine();
  driverInit(a);
  request(a, 0);
  const s = a.saveState();
  const b = machine(16);
  b.loadState(s);
  assert.deepEqual(b.saveState(), a.saveState());
  request(a, 1);
  request(b, 1);
  assert.deepEqual(b.saveState(), a.saveState());
  assert.deepEqual(b.mem.mem.subarray(BUF + 16, BUF + 32), a.mem.mem.subarray(BUF + 16, BUF + 32));
  assert.equal(b.mem.read16(RING + 0x200 + 2), 2);
});

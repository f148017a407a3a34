import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../bus/ports.js';
import { Port92 } from './port92.js';

function make() {
  const io = new IoPorts();
  const p = new Port92('port92', io);
  const a20: boolean[] = [];
  let resets = 0;
  p.onA20 = (on) => a20.push(on);
  p.onReset = () => resets++;
  return { io, p, a20, resets: () => resets };
}

const outb = (io: IoPorts, v: number) => io.write8[0x92](0x92, v);
const inb = (io: IoPorts) => io.read8[0x92](0x92);

test('bit 1 drives A20 on every write; reads return the last value', () => {
  const { io, a20 } = make();
  assert.equal(inb(io), 0);
  outb(io, 0x02);
  assert.equal(inb(io), 0x02);
  outb(io, 0x02);
  outb(io, 0x00);
  assert.deepEqual(a20, [true, true, false]);
});

test('bit 0: a 0 -> 1 transition requests a reset; holding it at 1 does not repeat', () => {
  const { io, resets } = make();
  outb(io, 0x03);
  assert.equal(resets(), 1);
  outb(io, 0x03);
  assert.equal(resets(), 1);
  outb(io, 0x02);
  outb(io, 0x01);
  assert.equal(resets(), 2);
});

test('round trip and reset', () => {
  const a = make();
  outb(a.io, 0x03);
  const b = make();
  b.p.loadState(a.p.saveState());
  assert.deepEqual(b.p.saveState(), a.p.saveState());
  outb(a.io, 0x03);
  outb(b.io, 0x03);
  assert.equal(b.resets(), 0, 'bit 0 was already set: no new edge after load');
  assert.deepEqual(b.p.saveState(), a.p.saveState());
  assert.throws(() => b.p.loadState({} as never));
  b.p.reset();
  assert.equal(inb(b.io), 0);
});

test('fuzz: random traffic never throws', () => {
  const { io } = make();
  let seed = 3;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  for (let i = 0; i < 5000; i++) {
    const w = rnd() % 3;
    if (rnd() & 1) [io.read8, io.read16, io.read32][w][0x92](0x92);
    else [io.write8, io.write16, io.write32][w][0x92](0x92, rnd());
  }
});

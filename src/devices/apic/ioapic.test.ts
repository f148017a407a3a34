/** I/O APIC: 82093AA registers through IOREGSEL/IOWIN, redirection of edge and level pins, Remote IRR and EOI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoApic, IOAPIC_DEFAULT_BASE, type IoapicState } from './ioapic.js';

const B = IOAPIC_DEFAULT_BASE;

interface Msg {
  vector: number;
  mode: number;
  level: boolean;
  logical: boolean;
  dest: number;
}

interface Rig {
  io: IoApic;
  msgs: Msg[];
  extIntAcks: number;
  rd: (reg: number) => number;
  wr: (reg: number, v: number) => void;
  /** Program redirection entry `pin` (low dword, then destination). */
  route: (pin: number, lo: number, dest?: number) => void;
}

function rig(): Rig {
  const r: Rig = {
    io: null as unknown as IoApic,
    msgs: [],
    extIntAcks: 0,
    rd: (reg) => {
      r.io.mmio.write32!(B, reg);
      return r.io.mmio.read32!(B + 0x10) >>> 0;
    },
    wr: (reg, v) => {
      r.io.mmio.write32!(B, reg);
      r.io.mmio.write32!(B + 0x10, v);
    },
    route: (pin, lo, dest = 0) => {
      r.wr(0x11 + pin * 2, dest << 24);
      r.wr(0x10 + pin * 2, lo);
    },
  };
  r.io = new IoApic('ioapic', {
    deliver: (vector, mode, level, logical, dest) => r.msgs.push({ vector, mode, level, logical, dest }),
    extIntAcknowledge: () => {
      r.extIntAcks++;
      return 0x08;
    },
  });
  return r;
}

test('ID, version 0x11 with 24 entries, arbitration ID; entries masked at reset', () => {
  const r = rig();
  assert.equal(r.rd(0x00), 0);
  assert.equal(r.rd(0x01), 0x00170011);
  r.wr(0x00, 0xffffffff);
  assert.equal(r.rd(0x00), 0x0f000000, 'ID bits 27:24');
  assert.equal(r.rd(0x02), 0x0f000000, 'arbitration ID follows the ID');
  r.wr(0x01, 0);
  assert.equal(r.rd(0x01), 0x00170011, 'version is read-only');
  for (let pin = 0; pin < 24; pin++) {
    assert.equal(r.rd(0x10 + pin * 2), 0x10000);
    assert.equal(r.rd(0x11 + pin * 2), 0);
  }
  assert.equal(r.rd(0x40), 0, 'past the last entry');
});

test('IOREGSEL reads back (byte and dword writes); the window repeats every 256 bytes; entry write masks', () => {
  const r = rig();
  r.io.mmio.write8(B, 0x12);
  assert.equal(r.io.mmio.read32!(B) >>> 0, 0x12);
  r.io.mmio.write32!(B + 0x100, 0x13);
  assert.equal(r.io.mmio.read8(B), 0x13);
  r.wr(0x10, 0xffffffff);
  assert.equal(r.rd(0x10), 0x1afff, 'delivery status and Remote IRR are read-only');
  r.wr(0x11, 0xffffffff);
  assert.equal(r.rd(0x11), 0xff000000);
  assert.equal(r.io.mmio.read8(B + 0x13), 0xff, 'byte reads are slices of IOWIN');
  assert.equal(r.io.mmio.read32!(B + 0x20) >>> 0, 0, 'other offsets read 0');
});

test('edge pin: one message per rising edge, with the entry vector, mode and destination', () => {
  const r = rig();
  r.route(2, 0x30, 0x01);
  const pin = r.io.input(2);
  pin.set(1);
  pin.set(1);
  pin.set(0);
  pin.set(1);
  assert.deepEqual(r.msgs, [
    { vector: 0x30, mode: 0, level: false, logical: false, dest: 1 },
    { vector: 0x30, mode: 0, level: false, logical: false, dest: 1 },
  ]);
  r.route(3, 0x931, 0x0f); // lowest priority, logical
  r.io.input(3).set(1);
  assert.deepEqual(r.msgs[2], { vector: 0x31, mode: 1, level: false, logical: true, dest: 0x0f });
});

test('masking: a masked pin sends nothing; an edge latched while masked is sent on unmask', () => {
  const r = rig();
  r.route(4, 0x10034);
  r.io.input(4).set(1);
  r.io.input(4).set(0);
  assert.equal(r.msgs.length, 0);
  r.route(4, 0x34);
  assert.equal(r.msgs.length, 1);
  r.route(4, 0x10034);
  r.route(4, 0x34);
  assert.equal(r.msgs.length, 1, 'one edge, one message');
});

test('level pin: Remote IRR holds further messages until the EOI; still asserted after EOI sends again', () => {
  const r = rig();
  r.route(9, 0xa039); // level, active high, vector 0x39
  const pin = r.io.input(9);
  pin.set(1);
  assert.equal(r.msgs.length, 1);
  assert.equal(r.msgs[0].level, true);
  assert.equal(r.rd(0x10 + 9 * 2) & 0x4000, 0x4000, 'Remote IRR set');
  pin.set(1);
  r.io.eoi(0x38);
  assert.equal(r.msgs.length, 1, 'another vector: no effect');
  r.io.eoi(0x39);
  assert.equal(r.msgs.length, 2, 'still asserted: sent again');
  pin.set(0);
  r.io.eoi(0x39);
  assert.equal(r.rd(0x10 + 9 * 2) & 0x4000, 0, 'Remote IRR clear');
  assert.equal(r.msgs.length, 2);
  pin.set(1);
  assert.equal(r.msgs.length, 3);
  // switching the pin to edge clears a stuck Remote IRR
  r.route(9, 0x39);
  assert.equal(r.rd(0x10 + 9 * 2) & 0x4000, 0);
  assert.equal(r.rd(0x10 + 9 * 2) & 0x2000, 0);
});

test('level pin asserted while masked is sent when unmasked; polarity is stored, not applied', () => {
  const r = rig();
  r.io.input(16).set(1);
  r.route(16, 0x1a041);
  assert.equal(r.msgs.length, 0);
  r.route(16, 0xa041);
  assert.equal(r.msgs.length, 1);
  assert.equal(r.rd(0x10 + 16 * 2), 0xe041, 'active low read back, Remote IRR set');
});

test('ExtINT takes the vector from the 8259 (INTA) and sends it as fixed; NMI passes through', () => {
  const r = rig();
  r.route(0, 0x700);
  r.io.input(0).set(1);
  assert.equal(r.extIntAcks, 1);
  assert.deepEqual(r.msgs[0], { vector: 0x08, mode: 0, level: false, logical: false, dest: 0 });
  r.route(5, 0x400);
  r.io.input(5).set(1);
  assert.equal(r.msgs[1].mode, 4);
});

test('save, load into a fresh I/O APIC, and both continue the same', () => {
  const a = rig();
  a.wr(0, 0x02000000);
  a.route(9, 0xa039);
  a.route(1, 0x10031);
  a.io.input(9).set(1);
  a.io.input(1).set(1);
  a.io.mmio.write32!(B, 0x13);
  const saved = a.io.saveState();
  const b = rig();
  b.io.loadState(saved);
  assert.equal(b.msgs.length, 0, 'loading sends nothing');
  const drive = (r: Rig): Msg[] => {
    r.io.eoi(0x39);
    r.route(1, 0x31);
    r.io.input(9).set(0);
    r.io.eoi(0x39);
    return r.msgs.slice(-2);
  };
  assert.deepEqual(drive(b), drive(a));
  assert.deepEqual(b.io.saveState(), a.io.saveState());
});

test('loadState rejects a malformed state without changing the device', () => {
  const r = rig();
  r.route(3, 0x33);
  const before = r.io.saveState();
  assert.throws(() => r.io.loadState({ ...before, redLo: new Uint32Array(23) }));
  assert.throws(() => r.io.loadState({ ...before, levels: 'x' } as unknown as IoapicState));
  assert.deepEqual(r.io.saveState(), before);
  assert.throws(() => r.io.input(24));
});

test('fuzz: random register traffic, pin changes and EOIs never throw', () => {
  let seed = 0x82093;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const r = rig();
  for (let i = 0; i < 30000; i++) {
    const v = (rnd(65536) << 16) | rnd(65536);
    switch (rnd(6)) {
      case 0:
        r.io.mmio.write32!(B + rnd(4096), v);
        break;
      case 1:
        r.io.mmio.write8(B + rnd(4096), v & 0xff);
        break;
      case 2:
        r.io.mmio.read32!(B + rnd(4096));
        r.io.mmio.read8(B + rnd(4096));
        break;
      case 3:
        r.wr(rnd(0x40), v);
        break;
      case 4:
        r.io.input(rnd(24)).set(rnd(2));
        break;
      default:
        r.io.eoi(rnd(256));
        break;
    }
  }
  const s = r.io.saveState();
  const b = rig();
  b.io.loadState(s);
  assert.deepEqual(b.io.saveState(), s);
});

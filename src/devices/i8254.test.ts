/** 8254 PIT and port 0x61: datasheet behaviour through the I/O ports (qtest style). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../bus/ports.js';
import { TestIrqLine } from '../bus/irq.js';
import { Clock } from '../time/clock.js';
import { I8254, PIT_HZ } from './i8254.js';
import { Port61, REFRESH_TOGGLE_NS } from './port61.js';

/** Nanoseconds of `n` PIT clocks. */
const ticks = (n: number): number => (n * 1e9) / PIT_HZ;
/** A point in the middle of tick `n`, safe from rounding at the edges. */
const at = (n: number): number => ticks(n + 0.5);

interface Rig {
  clock: Clock;
  irq: TestIrqLine;
  pit: I8254;
  p61: Port61;
  outb: (port: number, v: number) => void;
  inb: (port: number) => number;
  /** Advance as the board does: through every timer deadline in order. */
  run: (ns: number) => void;
}

function rig(): Rig {
  const ports = new IoPorts();
  const clock = new Clock();
  const irq = new TestIrqLine();
  const pit = new I8254('pit', { ports, clock, irq });
  const p61 = new Port61('port61', { ports, clock, timer: pit });
  return {
    clock,
    irq,
    pit,
    p61,
    outb: (p, v) => ports.write8[p](p, v),
    inb: (p) => ports.read8[p](p),
    run: (ns) => {
      for (let d = clock.nextDeadline(); d <= ns; d = clock.nextDeadline()) clock.advanceTo(d);
      clock.advanceTo(ns);
    },
  };
}

function readWord(r: Rig, port: number): number {
  const lo = r.inb(port);
  return lo | (r.inb(port) << 8);
}

test('mode 2 on counter 0 raises IRQ 0 once per period', () => {
  const r = rig();
  r.outb(0x43, 0x34); // counter 0, LSB/MSB, mode 2, binary
  r.outb(0x40, 1193 & 0xff);
  r.outb(0x40, 1193 >> 8);
  assert.equal(r.irq.level, 1, 'OUT is high in mode 2');
  r.irq.raises = 0;
  r.run(at(1193 * 10));
  assert.equal(r.irq.raises, 10);
  assert.equal(r.clock.nextDeadline() < Infinity, true);
});

test('a coarse clock jump still delivers a rising edge the PIC can latch', () => {
  const r = rig();
  r.outb(0x43, 0x34);
  r.outb(0x40, 100);
  r.outb(0x40, 0);
  r.irq.raises = 0;
  r.clock.advanceTo(at(1000)); // one jump over ten periods
  assert.equal(r.irq.raises, 1);
  assert.equal(r.irq.level, 1);
});

test('mode 0: OUT low until terminal count, then high; the counter keeps counting down', () => {
  const r = rig();
  r.outb(0x43, 0x30);
  assert.equal(r.irq.level, 0, 'OUT low after the control word');
  r.outb(0x40, 0x00);
  r.outb(0x40, 0x10); // 0x1000
  r.run(at(0x100));
  assert.equal(readWord(r, 0x40), 0x1000 - 0x100);
  assert.equal(r.irq.level, 0);
  r.run(at(0x1000));
  assert.equal(r.irq.level, 1);
  assert.equal(r.irq.raises, 1);
  r.run(at(0x1010));
  assert.equal(readWord(r, 0x40), 0xfff0, 'wraps after zero');
  assert.equal(r.irq.level, 1, 'stays high');
  assert.equal(r.irq.raises, 1);
});

test('mode 0: writing the first byte of a new count drives OUT low and stops counting', () => {
  const r = rig();
  r.outb(0x43, 0x30);
  r.outb(0x40, 10);
  r.outb(0x40, 0);
  r.run(at(20));
  assert.equal(r.irq.level, 1);
  r.outb(0x40, 50);
  assert.equal(r.irq.level, 0);
  r.run(at(200));
  assert.equal(r.irq.level, 0, 'no count: stopped');
  r.outb(0x40, 0);
  r.run(at(200) + ticks(49));
  assert.equal(r.irq.level, 0);
  r.run(at(200) + ticks(50.5));
  assert.equal(r.irq.level, 1);
});

test('counter latch freezes the value until both bytes are read', () => {
  const r = rig();
  r.outb(0x43, 0x34);
  r.outb(0x40, 0x00);
  r.outb(0x40, 0x40); // 0x4000
  r.run(at(0x123));
  r.outb(0x43, 0x00); // latch counter 0
  r.run(at(0x500));
  r.outb(0x43, 0x00); // a second latch is ignored while the first is unread
  assert.equal(readWord(r, 0x40), 0x4000 - 0x123);
  assert.equal(readWord(r, 0x40), 0x4000 - 0x500, 'live again after the latched read');
});

test('mode 3 square wave: half period high, half low, one IRQ per period', () => {
  const r = rig();
  r.outb(0x43, 0x36);
  r.outb(0x40, 100);
  r.outb(0x40, 0);
  r.run(at(10));
  assert.equal(r.irq.level, 1);
  assert.equal(readWord(r, 0x40), 100 - 20, 'counts down by two');
  r.run(at(60));
  assert.equal(r.irq.level, 0);
  r.run(at(1000));
  assert.equal(r.irq.raises, 1 + 10, 'initial rise plus one per period');
});

test('mode 4: a one-clock low strobe at terminal count', () => {
  const r = rig();
  r.outb(0x43, 0x38);
  r.outb(0x40, 50);
  r.outb(0x40, 0);
  assert.equal(r.irq.level, 1);
  const before = r.irq.raises;
  r.run(at(50));
  assert.equal(r.irq.level, 0);
  r.run(at(51));
  assert.equal(r.irq.level, 1);
  r.run(at(1000));
  assert.equal(r.irq.raises, before + 1, 'one strobe only');
});

test('mode 2: a new count takes effect at the end of the current period', () => {
  const r = rig();
  r.outb(0x43, 0x34);
  r.outb(0x40, 100);
  r.outb(0x40, 0);
  r.run(at(30));
  r.outb(0x40, 10);
  r.outb(0x40, 0);
  r.outb(0x43, 0x00);
  assert.equal(readWord(r, 0x40), 70, 'the current period goes on');
  const raises = r.irq.raises;
  r.run(at(100 + 35));
  assert.equal(r.irq.raises, raises + 1 + 3, 'end of the old period, then every 10 clocks');
});

test('read-back: status byte reports OUT, null count, access, mode and BCD', () => {
  const r = rig();
  r.outb(0x43, 0xb5); // counter 2, LSB/MSB, mode 2, BCD
  r.outb(0x43, 0xe8); // read back status of counter 2
  assert.equal(r.inb(0x42), 0x40 | 0x80 | 0x30 | 0x04 | 0x01, 'null count until a count is loaded; OUT high in mode 2');
  r.outb(0x61, 0x01); // gate on
  r.outb(0x42, 0x00);
  r.outb(0x42, 0x10); // BCD 1000
  r.run(at(5));
  r.outb(0x43, 0xc8); // read back count and status of counter 2
  assert.equal(r.inb(0x42), 0x80 | 0x30 | 0x04 | 0x01, 'status first, count loaded');
  assert.equal(readWord(r, 0x42), 0x0995, 'then the latched count, in BCD');
});

test('BCD counting: a count of 0 is 10000 and values read back in BCD', () => {
  const r = rig();
  r.outb(0x43, 0x31); // counter 0, LSB/MSB, mode 0, BCD
  r.outb(0x40, 0);
  r.outb(0x40, 0);
  r.run(at(1));
  assert.equal(readWord(r, 0x40), 0x9999);
  r.run(at(9999));
  assert.equal(r.irq.level, 0);
  r.run(at(10000));
  assert.equal(r.irq.level, 1);
});

test('LSB-only and MSB-only access', () => {
  const r = rig();
  r.outb(0x43, 0x50); // counter 1, LSB only, mode 0
  r.outb(0x41, 0x80);
  r.run(at(0x10));
  assert.equal(r.inb(0x41), 0x70);
  assert.equal(r.inb(0x41), 0x70, 'every read is the LSB');
  r.outb(0x43, 0x60); // counter 1, MSB only
  r.outb(0x41, 0x02); // count 0x0200
  r.run(at(0x10) + ticks(0x101 + 0.4));
  assert.equal(r.inb(0x41), 0x00, 'MSB of 0x00ff');
});

test('counter 2 through port 0x61: gate, OUT status, and the delay loop SeaBIOS and Linux use', () => {
  const r = rig();
  r.outb(0x61, (r.inb(0x61) & ~0x02) | 0x01); // gate high, speaker off
  assert.equal(r.inb(0x61) & 0x03, 0x01);
  r.outb(0x43, 0xb0); // counter 2, LSB/MSB, mode 0
  r.outb(0x42, 0xe8);
  r.outb(0x42, 0x03); // 1000 clocks
  let polls = 0;
  let t = 0;
  while ((r.inb(0x61) & 0x20) === 0 && polls < 10000) {
    t += 100;
    r.run(t);
    polls++;
  }
  assert.ok(r.clock.nowNs >= ticks(1000) && r.clock.nowNs < ticks(1000) + 200, `OUT2 rose at ${r.clock.nowNs} ns`);
  assert.equal(r.irq.raises, 0, 'counter 2 does not touch IRQ 0');
});

test('gate low suspends counting in mode 0', () => {
  const r = rig();
  r.outb(0x61, 0x01);
  r.outb(0x43, 0xb0);
  r.outb(0x42, 100);
  r.outb(0x42, 0);
  r.run(at(40));
  r.outb(0x61, 0x00);
  r.run(at(1000));
  r.outb(0x43, 0x80);
  assert.equal(readWord(r, 0x42), 60);
  r.outb(0x61, 0x01);
  r.run(at(1000) + ticks(61));
  assert.ok((r.inb(0x61) & 0x20) !== 0);
});

test('mode 1: a gate rising edge starts a one-shot; a later edge retriggers it', () => {
  const r = rig();
  r.outb(0x43, 0xb2); // counter 2, mode 1
  r.outb(0x42, 50);
  r.outb(0x42, 0);
  assert.ok(r.inb(0x61) & 0x20, 'OUT high until triggered');
  r.run(at(10));
  r.outb(0x61, 0x01);
  assert.equal(r.inb(0x61) & 0x20, 0, 'OUT low after the trigger');
  r.run(at(10 + 30));
  r.outb(0x61, 0x00);
  r.outb(0x61, 0x01); // retrigger
  r.run(at(10 + 30 + 45));
  assert.equal(r.inb(0x61) & 0x20, 0);
  r.run(at(10 + 30 + 51));
  assert.ok(r.inb(0x61) & 0x20);
});

test('mode 5: a gate rising edge starts a count ending in a one-clock low strobe', () => {
  const r = rig();
  r.outb(0x43, 0xba); // counter 2, mode 5
  r.outb(0x42, 20);
  r.outb(0x42, 0);
  r.run(at(100));
  assert.ok(r.inb(0x61) & 0x20, 'no strobe without a trigger');
  r.outb(0x61, 0x01);
  r.run(at(100) + ticks(20.4));
  assert.equal(r.inb(0x61) & 0x20, 0, 'strobe at terminal count');
  r.run(at(100) + ticks(21.4));
  assert.ok(r.inb(0x61) & 0x20);
});

test('mode 2/3 gate low forces OUT high and a rising edge reloads', () => {
  const r = rig();
  r.outb(0x61, 0x01);
  r.outb(0x43, 0xb6); // counter 2, mode 3
  r.outb(0x42, 100);
  r.outb(0x42, 0);
  r.run(at(60));
  assert.equal(r.inb(0x61) & 0x20, 0);
  r.outb(0x61, 0x00);
  assert.ok(r.inb(0x61) & 0x20);
  r.outb(0x61, 0x01);
  r.outb(0x43, 0x80);
  assert.equal(readWord(r, 0x42), 100);
});

test('port 0x61 bit 4 toggles every refresh period; bits 2-3 read back', () => {
  const r = rig();
  r.outb(0x61, 0x0c);
  const a = r.inb(0x61);
  assert.equal(a & 0x0c, 0x0c);
  r.run(REFRESH_TOGGLE_NS * 1.5);
  const b = r.inb(0x61);
  assert.notEqual(a & 0x10, b & 0x10);
  r.run(REFRESH_TOGGLE_NS * 2.5);
  assert.equal(r.inb(0x61) & 0x10, a & 0x10);
});

test('the control port reads 0xFF; a fresh PIT has no timer armed', () => {
  const r = rig();
  assert.equal(r.inb(0x43), 0xff);
  assert.equal(r.clock.nextDeadline(), Infinity);
});

test('save, load into a fresh PIT, and both continue the same', () => {
  const a = rig();
  a.outb(0x61, 0x03);
  a.outb(0x43, 0x34);
  a.outb(0x40, 0x9b);
  a.outb(0x40, 0x2e);
  a.outb(0x43, 0xb6);
  a.outb(0x42, 0x33);
  a.outb(0x42, 0x05);
  a.outb(0x43, 0x70); // counter 1 mode 0, count pending second byte
  a.outb(0x41, 0x12);
  a.run(5_123_456);
  a.outb(0x40, 0x10); // new mode-2 count waits for the period end
  a.outb(0x40, 0x00);
  a.outb(0x43, 0x00); // latched, one byte read
  a.inb(0x40);
  const saved = a.pit.saveState();
  const b = rig();
  b.clock.loadState(a.clock.saveState());
  b.pit.loadState(saved);
  b.p61.loadState(a.p61.saveState());
  b.irq.level = a.irq.level;
  const drive = (r: Rig): number[] => {
    const out: number[] = [r.inb(0x40), r.irq.level];
    r.irq.raises = 0;
    r.run(30_000_000);
    out.push(r.irq.raises, readWord(r, 0x40), r.inb(0x61) & 0x20, readWord(r, 0x42));
    r.outb(0x41, 0x00);
    r.run(31_000_000);
    out.push(readWord(r, 0x41));
    return out;
  };
  assert.deepEqual(drive(b), drive(a));
  assert.deepEqual(b.pit.saveState(), a.pit.saveState());
});

test('loadState rejects a malformed state without changing the device', () => {
  const r = rig();
  r.outb(0x43, 0x34);
  const before = r.pit.saveState();
  assert.throws(() => r.pit.loadState({ ...before, channels: before.channels.slice(0, 2) }));
  assert.throws(() => r.pit.loadState({ ...before, lastTick0: NaN }));
  assert.deepEqual(r.pit.saveState(), before);
});

test('fuzz: random port traffic, gate changes and clock steps never throw', () => {
  let seed = 0x8254;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const r = rig();
  let t = 0;
  for (let i = 0; i < 20000; i++) {
    const port = [0x40, 0x41, 0x42, 0x43, 0x61][rnd(5)];
    switch (rnd(3)) {
      case 0:
        r.outb(port, rnd(256));
        break;
      case 1:
        assert.ok(r.inb(port) <= 0xff);
        break;
      default:
        t += rnd(4) === 0 ? rnd(100_000_000) : rnd(5000);
        r.run(t);
    }
  }
  const s = r.pit.saveState();
  const b = rig();
  b.clock.loadState(r.clock.saveState());
  b.pit.loadState(s);
  assert.deepEqual(b.pit.saveState(), s);
});

/** MC146818 RTC / CMOS: datasheet behaviour through the I/O ports (qtest style, after QEMU rtc-test). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../bus/ports.js';
import { TestIrqLine } from '../bus/irq.js';
import { Clock } from '../time/clock.js';
import { Mc146818 } from './mc146818.js';

const S = 1e9;
const MS = 1e6;
/** 2024-02-29 23:59:58 UTC, a Thursday. */
const EPOCH = 1709251198;

interface Rig {
  clock: Clock;
  irq: TestIrqLine;
  rtc: Mc146818;
  outb: (port: number, v: number) => void;
  inb: (port: number) => number;
  cmos: (index: number) => number;
  setCmos: (index: number, v: number) => void;
  run: (ns: number) => void;
}

function rig(epochSec = EPOCH): Rig {
  const ports = new IoPorts();
  const clock = new Clock();
  const irq = new TestIrqLine();
  const rtc = new Mc146818('rtc', { ports, clock, irq, epochSec });
  const outb = (p: number, v: number): void => ports.write8[p](p, v);
  const inb = (p: number): number => ports.read8[p](p);
  return {
    clock,
    irq,
    rtc,
    outb,
    inb,
    cmos: (i) => {
      outb(0x70, i);
      return inb(0x71);
    },
    setCmos: (i, v) => {
      outb(0x70, i);
      outb(0x71, v);
    },
    run: (ns) => {
      for (let d = clock.nextDeadline(); d <= ns; d = clock.nextDeadline()) clock.advanceTo(d);
      clock.advanceTo(ns);
    },
  };
}

function time(r: Rig): number[] {
  return [0x32, 9, 8, 7, 6, 4, 2, 0].map((i) => r.cmos(i));
}

test('the clock starts at the epoch, in BCD 24-hour mode, and advances with guest time', () => {
  const r = rig();
  assert.deepEqual(time(r), [0x20, 0x24, 0x02, 0x29, 0x05, 0x23, 0x59, 0x58]);
  r.run(2 * S + 1);
  assert.deepEqual(time(r), [0x20, 0x24, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00], 'leap day rolls into March');
  assert.equal(r.cmos(0x0a), 0x26);
  assert.equal(r.cmos(0x0b), 0x02);
  assert.equal(r.cmos(0x0d), 0x80);
});

test('binary and 12-hour formats', () => {
  const r = rig();
  r.setCmos(0x0b, 0x04); // binary, 12-hour
  assert.equal(r.cmos(4), 0x80 | 11, '23h is 11 PM');
  assert.equal(r.cmos(0), 58);
  assert.equal(r.cmos(9), 24);
  r.run(2 * S + 1);
  assert.equal(r.cmos(4), 12, 'midnight is 12 AM');
});

test('SET stops updates; the clock runs on from the values written', () => {
  const r = rig();
  r.setCmos(0x0b, 0x82 | 0x10); // SET, 24h, UIE
  assert.equal(r.cmos(0x0b), 0x82, 'SET clears UIE');
  r.setCmos(0, 0x30);
  r.setCmos(2, 0x15);
  r.setCmos(4, 0x08);
  r.setCmos(7, 0x04);
  r.setCmos(8, 0x07);
  r.setCmos(9, 0x99);
  r.setCmos(0x32, 0x19);
  r.run(5 * S);
  assert.equal(r.cmos(0), 0x30, 'frozen while SET');
  assert.equal(r.cmos(0x0a) & 0x80, 0, 'no UIP while SET');
  r.setCmos(0x0b, 0x02);
  r.run(5 * S + 3 * S);
  assert.deepEqual(time(r), [0x19, 0x99, 0x07, 0x04, 0x01, 0x08, 0x15, 0x33], '1999-07-04 was a Sunday');
});

test('writing a time register while running keeps the clock going from it', () => {
  const r = rig();
  r.setCmos(2, 0x10);
  r.run(1 * S + 1);
  assert.equal(r.cmos(2), 0x10);
  assert.equal(r.cmos(0), 0x59);
});

test('UIP is set in the 244 us before each update', () => {
  const r = rig();
  r.run(0.5 * S);
  assert.equal(r.cmos(0x0a) & 0x80, 0);
  r.run(1 * S - 100_000);
  assert.equal(r.cmos(0x0a) & 0x80, 0x80);
  assert.equal(r.cmos(0), 0x58, 'the update has not happened yet');
  r.run(1 * S + 1);
  assert.equal(r.cmos(0x0a) & 0x80, 0);
  assert.equal(r.cmos(0), 0x59);
});

test('periodic interrupt at the register A rate; reading C clears flags and drops IRQ 8', () => {
  const r = rig();
  r.setCmos(0x0b, 0x42); // PIE
  let n = 0;
  for (let t = 0; t <= 10 * MS; t += 10_000) {
    r.run(t);
    if (r.irq.level) {
      n++;
      assert.equal(r.cmos(0x0c), 0xc0);
      assert.equal(r.irq.level, 0);
    }
  }
  assert.equal(n, 10, '1024 Hz for 10 ms');
  r.setCmos(0x0a, 0x2f); // 2 Hz
  r.cmos(0x0c);
  r.irq.raises = 0;
  r.run(10 * MS + 2 * S);
  assert.equal(r.irq.raises, 1, 'a flag not cleared holds the line: one raise');
  assert.equal(r.cmos(0x0c) & 0xc0, 0xc0);
  r.run(10 * MS + 2 * S + 600 * MS);
  assert.equal(r.irq.raises, 2);
});

test('flags are set with their interrupts disabled, without IRQ 8', () => {
  const r = rig();
  r.run(1.5 * S);
  assert.equal(r.irq.raises, 0);
  assert.equal(r.cmos(0x0c), 0x40 | 0x10, 'PF and UF, no IRQF');
  assert.equal(r.cmos(0x0c), 0);
  r.setCmos(0x0a, 0x20); // no periodic rate
  r.run(3 * S);
  assert.equal(r.cmos(0x0c), 0x10 | 0x20, 'UF, and AF: the alarm bytes (00:00:00) match midnight');
});

test('enabling an interrupt whose flag is already set asserts IRQ 8 at once', () => {
  const r = rig();
  r.run(1.5 * S);
  r.setCmos(0x0b, 0x12);
  assert.equal(r.irq.level, 1);
  assert.equal(r.cmos(0x0c), 0x80 | 0x40 | 0x10);
});

test('update-ended interrupt at each second boundary', () => {
  const r = rig();
  r.setCmos(0x0b, 0x12); // UIE
  r.run(1 * S - 1000);
  assert.equal(r.irq.level, 0);
  r.run(1 * S + 1000);
  assert.equal(r.irq.level, 1);
  assert.equal(r.cmos(0x0c) & 0x90, 0x90);
  assert.equal(r.cmos(0), 0x59);
});

test('alarm interrupt when the time matches, with don\'t-care bytes', () => {
  const r = rig();
  r.setCmos(1, 0x05);
  r.setCmos(3, 0x00);
  r.setCmos(5, 0xc0); // any hour
  r.setCmos(0x0b, 0x22); // AIE
  r.run(6 * S + 0.5 * S);
  assert.equal(r.irq.level, 0, '00:00:04 is no match');
  r.run(7 * S + 1);
  assert.equal(r.irq.level, 1, '00:00:05 matches');
  assert.equal(r.cmos(0x0c) & 0xa0, 0xa0);
  r.run(20 * S);
  assert.equal(r.irq.level, 0);
});

test('divider reset stops the clock; the first update comes 500 ms after release', () => {
  const r = rig();
  r.setCmos(0x0a, 0x70);
  r.run(10 * S);
  assert.equal(r.cmos(0), 0x58);
  assert.equal(r.cmos(0x0c), 0, 'no periodic or update flags with the divider in reset');
  r.setCmos(0x0a, 0x26);
  r.run(10 * S + 400 * MS);
  assert.equal(r.cmos(0), 0x58);
  r.run(10 * S + 600 * MS);
  assert.equal(r.cmos(0), 0x59);
});

test('index port: bit 7 disables NMI, reads of 0x70 float, CMOS RAM holds bytes', () => {
  const r = rig();
  r.outb(0x70, 0x80 | 0x0f);
  assert.equal(r.rtc.nmiDisabled, true);
  r.outb(0x71, 0x0a);
  r.outb(0x70, 0x0f);
  assert.equal(r.rtc.nmiDisabled, false);
  assert.equal(r.inb(0x71), 0x0a);
  assert.equal(r.inb(0x70), 0xff);
  r.rtc.setByte(0x15, 0x80);
  r.rtc.setByte(0x16, 0x02);
  r.rtc.setByte(0x5b, 0x12);
  assert.equal(r.cmos(0x15), 0x80);
  assert.equal(r.cmos(0x16), 0x02);
  assert.equal(r.cmos(0x5b), 0x12);
  assert.equal(r.rtc.peekByte(0x5b), 0x12);
  r.setCmos(0x0d, 0x00);
  assert.equal(r.cmos(0x0d), 0x80, 'D is read-only, VRT set');
  r.setCmos(0x0c, 0xff);
  assert.equal(r.cmos(0x0c), 0, 'C is read-only');
});

test('reset clears interrupt enables and flags but keeps the time and RAM', () => {
  const r = rig();
  r.setCmos(0x0b, 0x72);
  r.setCmos(0x40, 0x55);
  r.run(1.5 * S);
  assert.equal(r.irq.level, 1);
  r.rtc.reset();
  assert.equal(r.irq.level, 0);
  assert.equal(r.cmos(0x0b), 0x02);
  assert.equal(r.cmos(0x40), 0x55);
  assert.equal(r.cmos(0), 0x59);
});

test('save, load into a fresh RTC, and both continue the same', () => {
  const a = rig();
  a.setCmos(0x0b, 0x62); // PIE, AIE
  a.setCmos(0x0a, 0x2c);
  a.setCmos(1, 0x10);
  a.setCmos(3, 0xc0);
  a.setCmos(5, 0xc0);
  a.rtc.setByte(0x38, 0x20);
  a.run(1_234_567_890);
  a.outb(0x70, 0x84);
  const saved = a.rtc.saveState();
  const b = rig(0);
  b.clock.loadState(a.clock.saveState());
  b.rtc.loadState(saved);
  assert.equal(b.irq.level, a.irq.level);
  const drive = (r: Rig): number[] => {
    const out: number[] = [r.inb(0x71)];
    r.irq.raises = 0;
    for (let t = 1_300_000_000; t < 15 * S; t += 7_777_777) {
      r.run(t);
      if (r.irq.level) out.push(t, r.cmos(0x0c));
    }
    out.push(r.irq.raises, ...time(r), r.cmos(0x38));
    return out;
  };
  assert.deepEqual(drive(b), drive(a));
  assert.deepEqual(b.rtc.saveState(), a.rtc.saveState());
});

test('loadState rejects a malformed state without changing the device', () => {
  const r = rig();
  const before = r.rtc.saveState();
  assert.throws(() => r.rtc.loadState({ ...before, ram: new Uint8Array(64) }));
  assert.throws(() => r.rtc.loadState({ ...before, baseNs: Infinity }));
  assert.deepEqual(r.rtc.saveState(), before);
});

test('fuzz: random port traffic and clock steps never throw', () => {
  let seed = 0x146818;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const r = rig();
  let t = 0;
  for (let i = 0; i < 20000; i++) {
    switch (rnd(4)) {
      case 0:
        r.outb(0x70, rnd(4) === 0 ? rnd(256) : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x0b, 0x0c, 0x0d, 0x32][rnd(15)]);
        break;
      case 1:
        r.outb(0x71, rnd(256));
        break;
      case 2:
        assert.ok(r.inb(0x71) <= 0xff);
        break;
      default:
        t += rnd(4) === 0 ? rnd(3 * S) : rnd(2 * MS);
        r.run(t);
    }
  }
  const s = r.rtc.saveState();
  const b = rig(0);
  b.clock.loadState(r.clock.saveState());
  b.rtc.loadState(s);
  assert.deepEqual(b.rtc.saveState(), s);
});

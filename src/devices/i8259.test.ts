/** 8259A PIC pair: datasheet behaviour through the I/O ports (qtest style). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../bus/ports.js';
import { I8259Pair } from './i8259.js';

interface Rig {
  ports: IoPorts;
  pic: I8259Pair;
  intr: () => boolean;
  outb: (port: number, v: number) => void;
  inb: (port: number) => number;
}

function rig(): Rig {
  const ports = new IoPorts();
  let level = false;
  const pic = new I8259Pair('pic', { ports, onIntr: (l) => (level = l) });
  return {
    ports,
    pic,
    intr: () => level,
    outb: (p, v) => ports.write8[p](p, v),
    inb: (p) => ports.read8[p](p),
  };
}

/** The initialisation SeaBIOS and Linux use: edge, cascade, 8086 mode, vectors 0x08 / 0x70. */
function init(r: Rig, icw4 = 0x01, masterBase = 0x08, slaveBase = 0x70): void {
  r.outb(0x20, 0x11);
  r.outb(0x21, masterBase);
  r.outb(0x21, 0x04);
  r.outb(0x21, icw4);
  r.outb(0xa0, 0x11);
  r.outb(0xa1, slaveBase);
  r.outb(0xa1, 0x02);
  r.outb(0xa1, icw4);
  r.outb(0x21, 0x00);
  r.outb(0xa1, 0x00);
}

function readIsr(r: Rig, cmd: number): number {
  r.outb(cmd, 0x0b);
  return r.inb(cmd);
}

function readIrr(r: Rig, cmd: number): number {
  r.outb(cmd, 0x0a);
  return r.inb(cmd);
}

test('an IRQ is delivered with its vector, held in service until EOI', () => {
  const r = rig();
  init(r);
  assert.equal(r.intr(), false);
  r.pic.input(0).set(1);
  assert.equal(r.intr(), true);
  assert.equal(readIrr(r, 0x20), 0x01);
  assert.equal(r.pic.acknowledge(), 0x08);
  assert.equal(r.intr(), false);
  assert.equal(readIsr(r, 0x20), 0x01);
  assert.equal(readIrr(r, 0x20), 0x00, 'edge request cleared by INTA');
  r.outb(0x20, 0x20); // non-specific EOI
  assert.equal(readIsr(r, 0x20), 0x00);
});

test('fully nested priority: higher IRQs preempt, lower ones wait for EOI', () => {
  const r = rig();
  init(r);
  r.pic.input(3).set(1);
  assert.equal(r.pic.acknowledge(), 0x0b);
  r.pic.input(4).set(1);
  assert.equal(r.intr(), false, 'IRQ4 waits behind IRQ3 in service');
  r.pic.input(1).set(1);
  assert.equal(r.intr(), true);
  assert.equal(r.pic.acknowledge(), 0x09);
  assert.equal(readIsr(r, 0x20), 0x0a);
  r.outb(0x20, 0x20); // clears the highest in service: IRQ1
  assert.equal(readIsr(r, 0x20), 0x08);
  assert.equal(r.intr(), false);
  r.outb(0x20, 0x20);
  assert.equal(r.intr(), true);
  assert.equal(r.pic.acknowledge(), 0x0c);
});

test('slave IRQs arrive through master IR2 with the slave vector', () => {
  const r = rig();
  init(r);
  r.pic.input(12).set(1);
  assert.equal(r.intr(), true);
  assert.equal(r.pic.acknowledge(), 0x74);
  assert.equal(readIsr(r, 0x20), 0x04);
  assert.equal(readIsr(r, 0xa0), 0x10);
  r.outb(0xa0, 0x20);
  r.outb(0x20, 0x20);
  assert.equal(readIsr(r, 0x20), 0);
  assert.equal(readIsr(r, 0xa0), 0);
  // ISA IRQ2 is IRQ9.
  r.pic.input(2).set(1);
  assert.equal(r.pic.acknowledge(), 0x71);
});

test('the IMR masks requests and reads back; unmasking delivers a latched request', () => {
  const r = rig();
  init(r);
  r.outb(0x21, 0xfe);
  assert.equal(r.inb(0x21), 0xfe);
  r.pic.input(1).set(1);
  assert.equal(r.intr(), false);
  r.outb(0x21, 0x00);
  assert.equal(r.intr(), true);
  r.outb(0xa1, 0xff);
  r.pic.input(8).set(1);
  assert.equal(r.pic.acknowledge(), 0x09);
});

test('edge inputs latch a pulse and need a new rising edge; level inputs follow the line', () => {
  const r = rig();
  init(r);
  const irq5 = r.pic.input(5);
  irq5.set(1);
  irq5.set(0);
  assert.equal(r.intr(), true, 'a pulse is latched');
  assert.equal(r.pic.acknowledge(), 0x0d);
  r.outb(0x20, 0x20);
  irq5.set(1);
  assert.equal(r.pic.acknowledge(), 0x0d);
  r.outb(0x20, 0x20);
  assert.equal(r.intr(), false, 'a line held high does not request again');
  irq5.set(1);
  assert.equal(r.intr(), false, 'repeating the same level is not an edge');

  // Level-triggered through ELCR.
  r.outb(0x4d0, 0x20);
  assert.equal(r.inb(0x4d0), 0x20);
  assert.equal(r.intr(), true, 'a level input requests while its line is high');
  assert.equal(r.pic.acknowledge(), 0x0d);
  r.outb(0x20, 0x20);
  assert.equal(r.intr(), true, 'still high after EOI: requests again');
  irq5.set(0);
  assert.equal(r.intr(), false);
  assert.equal(readIrr(r, 0x20) & 0x20, 0);
});

test('ELCR bits for IRQ0, 1, 2, 8 and 13 are fixed at edge', () => {
  const r = rig();
  r.outb(0x4d0, 0xff);
  r.outb(0x4d1, 0xff);
  assert.equal(r.inb(0x4d0), 0xf8);
  assert.equal(r.inb(0x4d1), 0xde);
});

test('ICW1 LTIM makes every input level-triggered', () => {
  const r = rig();
  r.outb(0x20, 0x19);
  r.outb(0x21, 0x20);
  r.outb(0x21, 0x04);
  r.outb(0x21, 0x01);
  r.outb(0x21, 0x00);
  r.pic.input(1).set(1);
  assert.equal(r.pic.acknowledge(), 0x21);
  r.outb(0x20, 0x20);
  assert.equal(r.intr(), true);
});

test('a request gone before INTA gives spurious IR7 (master) or IR15 (slave)', () => {
  const r = rig();
  init(r);
  r.outb(0x4d0, 0x08); // IRQ3 level
  r.outb(0x4d1, 0x02); // IRQ9 level
  r.pic.input(3).set(1);
  r.pic.input(3).set(0);
  assert.equal(r.pic.acknowledge(), 0x0f, 'master spurious: base + 7');
  assert.equal(readIsr(r, 0x20), 0, 'no ISR bit for a spurious IRQ7');
  // Slave: IR2 latched on the master, the slave request then goes away.
  r.pic.input(9).set(1);
  r.pic.input(9).set(0);
  assert.equal(r.pic.acknowledge(), 0x77, 'slave spurious: slave base + 7');
  assert.equal(readIsr(r, 0xa0), 0);
  assert.equal(readIsr(r, 0x20), 0x04, 'the master still has IR2 in service');
});

test('poll command returns 0x80 | level and acknowledges it', () => {
  const r = rig();
  init(r);
  r.outb(0x20, 0x0c);
  assert.equal(r.inb(0x20), 0x00, 'nothing pending');
  r.pic.input(6).set(1);
  r.outb(0x20, 0x0c);
  assert.equal(r.inb(0x20), 0x86);
  assert.equal(readIsr(r, 0x20), 0x40);
  assert.equal(r.inb(0x21), 0x00, 'poll applies to one read only');
});

test('auto-EOI leaves nothing in service', () => {
  const r = rig();
  init(r, 0x03);
  r.pic.input(4).set(1);
  assert.equal(r.pic.acknowledge(), 0x0c);
  assert.equal(readIsr(r, 0x20), 0);
  r.pic.input(6).set(1);
  assert.equal(r.intr(), true, 'lower priorities are not blocked');
});

test('specific EOI clears the named level only', () => {
  const r = rig();
  init(r);
  r.pic.input(4).set(1);
  r.pic.acknowledge();
  r.pic.input(1).set(1);
  r.pic.acknowledge();
  assert.equal(readIsr(r, 0x20), 0x12);
  r.outb(0x20, 0x64); // specific EOI IR4
  assert.equal(readIsr(r, 0x20), 0x02);
});

test('rotation: rotate on EOI and set priority move the lowest priority', () => {
  const r = rig();
  init(r);
  r.pic.input(0).set(1);
  assert.equal(r.pic.acknowledge(), 0x08);
  r.outb(0x20, 0xa0); // rotate on non-specific EOI: IR0 becomes lowest
  r.pic.input(0).set(0);
  r.pic.input(0).set(1);
  r.pic.input(3).set(1);
  assert.equal(r.pic.acknowledge(), 0x0b, 'IR3 now outranks IR0');
  r.outb(0x20, 0x20);
  r.outb(0x20, 0xc3 + 2); // set priority: IR5 lowest, so IR6 highest
  r.pic.input(6).set(1);
  assert.equal(r.pic.acknowledge(), 0x0e);
  r.outb(0x20, 0x66);
  assert.equal(r.pic.acknowledge(), 0x08, 'the IR0 request still pending is next');
});

test('rotate in auto-EOI mode rotates on each INTA', () => {
  const r = rig();
  init(r, 0x03);
  r.outb(0x20, 0x80); // set rotate in AEOI
  r.pic.input(1).set(1);
  r.pic.input(2 + 1).set(1);
  assert.equal(r.pic.acknowledge(), 0x09);
  r.pic.input(1).set(0);
  r.pic.input(1).set(1);
  assert.equal(r.pic.acknowledge(), 0x0b, 'IR1 went to the lowest priority');
});

test('special mask mode lets lower priorities in while a masked level is in service', () => {
  const r = rig();
  init(r);
  r.pic.input(1).set(1);
  r.pic.acknowledge();
  r.pic.input(5).set(1);
  assert.equal(r.intr(), false);
  r.outb(0x21, 0x02); // mask IR1
  r.outb(0x20, 0x68); // set special mask mode
  assert.equal(r.intr(), true);
  assert.equal(r.pic.acknowledge(), 0x0d);
  r.outb(0x20, 0x48); // reset special mask mode
  assert.equal(readIsr(r, 0x20), 0x22);
});

test('special fully nested mode lets a higher slave request through while IR2 is in service', () => {
  const r = rig();
  init(r);
  r.outb(0x20, 0x11);
  r.outb(0x21, 0x08);
  r.outb(0x21, 0x04);
  r.outb(0x21, 0x11); // SFNM
  r.outb(0x21, 0x00);
  r.pic.input(12).set(1);
  assert.equal(r.pic.acknowledge(), 0x74);
  r.pic.input(9).set(1);
  assert.equal(r.intr(), true);
  assert.equal(r.pic.acknowledge(), 0x71);
});

test('save, load into a fresh pair, and both continue the same', () => {
  const a = rig();
  init(a);
  a.outb(0x4d1, 0x0c);
  a.pic.input(1).set(1);
  a.pic.input(11).set(1);
  a.pic.input(4).set(1);
  a.pic.acknowledge();
  a.outb(0x20, 0x0b);
  const saved = a.pic.saveState();
  const b = rig();
  b.pic.loadState(saved);
  assert.equal(b.intr(), a.intr());
  const drive = (r: Rig): number[] => {
    const out: number[] = [];
    out.push(r.inb(0x20), r.inb(0x21), r.inb(0xa1), r.inb(0x4d1));
    r.outb(0x20, 0x20);
    out.push(r.pic.acknowledge());
    r.pic.input(11).set(0);
    r.outb(0xa0, 0x20);
    r.outb(0x20, 0x20);
    out.push(r.pic.acknowledge(), r.intr() ? 1 : 0);
    return out;
  };
  assert.deepEqual(drive(b), drive(a));
  assert.deepEqual(b.pic.saveState(), a.pic.saveState());
});

test('loadState rejects a malformed state without changing the device', () => {
  const r = rig();
  init(r);
  const before = r.pic.saveState();
  assert.throws(() => r.pic.loadState({ master: before.master } as never));
  assert.throws(() => r.pic.loadState({ ...before, slave: { ...before.slave, imr: 'x' } } as never));
  assert.deepEqual(r.pic.saveState(), before);
});

test('fuzz: random port traffic, line changes and INTA never throw', () => {
  let seed = 0x8259;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const r = rig();
  const portsList = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1];
  for (let i = 0; i < 20000; i++) {
    const port = portsList[rnd(portsList.length)];
    switch (rnd(4)) {
      case 0:
        r.outb(port, rnd(256));
        break;
      case 1:
        r.inb(port);
        break;
      case 2:
        r.pic.input(rnd(16)).set(rnd(2));
        break;
      default: {
        const v = r.pic.acknowledge();
        assert.ok(v >= 0 && v <= 0xff);
      }
    }
  }
  const s = r.pic.saveState();
  const b = rig();
  b.pic.loadState(s);
  assert.deepEqual(b.pic.saveState(), s);
});

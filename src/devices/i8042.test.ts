import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestIrqLine } from '../bus/irq.js';
import { IoPorts } from '../bus/ports.js';
import { Clock } from '../time/clock.js';
import { I8042 } from './i8042.js';
import type { Ps2Device, Ps2Port } from './ps2.js';
import { Ps2Keyboard } from './ps2kbd.js';
import { Ps2Mouse } from './ps2mouse.js';

const DATA = 0x60, CMD = 0x64;

/** A scripted PS/2 device: records what it is sent, sends what the test queues. */
class FakeDevice implements Ps2Device {
  readonly got: number[] = [];
  readonly queue: number[] = [];
  constructor(private readonly _port: Ps2Port) {
    _port.attach(this);
  }
  write(b: number): void {
    this.got.push(b);
  }
  read(): number {
    return this.queue.length ? this.queue.shift()! : -1;
  }
  send(...bytes: number[]): void {
    this.queue.push(...bytes);
    this._port.dataReady();
  }
}

function setup() {
  const ports = new IoPorts();
  const irq1 = new TestIrqLine();
  const irq12 = new TestIrqLine();
  const events: string[] = [];
  const kbc = new I8042('i8042', ports, irq1, irq12, {
    onA20: (on) => events.push(`a20:${on}`),
    onReset: () => events.push('reset'),
  });
  const kbd = new FakeDevice(kbc.kbdPort);
  const aux = new FakeDevice(kbc.auxPort);
  const outb = (p: number, v: number) => ports.write8[p](p, v);
  const inb = (p: number) => ports.read8[p](p);
  /** Read every byte the controller has for us. */
  const drain = () => {
    const r: number[] = [];
    while (inb(CMD) & 0x01 && r.length < 64) r.push(inb(DATA));
    return r;
  };
  return { ports, irq1, irq12, events, kbc, kbd, aux, outb, inb, drain };
}

test('self-test answers 0x55 and sets the system flag; interface tests answer 0x00', () => {
  const { inb, outb } = setup();
  assert.equal(inb(CMD) & 0x05, 0x00);
  outb(CMD, 0xaa);
  assert.equal(inb(CMD) & 0x0d, 0x0d); // OBF, SYS, last write was a command
  assert.equal(inb(DATA), 0x55);
  assert.equal(inb(CMD) & 0x01, 0);
  outb(CMD, 0xab);
  assert.equal(inb(DATA), 0x00);
  outb(CMD, 0xa9);
  assert.equal(inb(DATA), 0x00);
  assert.equal(inb(CMD) & 0x10, 0x10, 'keyboard not inhibited');
});

test('command byte: 0x20 reads, 0x60 writes; its SYS bit shows in the status register', () => {
  const { inb, outb } = setup();
  outb(CMD, 0x60);
  outb(DATA, 0x65);
  assert.equal(inb(CMD) & 0x0c, 0x04);
  outb(CMD, 0x20);
  assert.equal(inb(DATA), 0x65);
  outb(CMD, 0x60);
  outb(DATA, 0x41);
  assert.equal(inb(CMD) & 0x04, 0);
  outb(CMD, 0x3f); // other RAM bytes read back as written
  assert.equal(inb(DATA), 0);
  outb(CMD, 0x7f);
  outb(DATA, 0x99);
  outb(CMD, 0x3f);
  assert.equal(inb(DATA), 0x99);
});

test('0xAD/0xAE and 0xA7/0xA8 set and clear the port disable bits; a disabled port holds its data', () => {
  const { inb, outb, kbd, aux, irq1, irq12 } = setup();
  const ccb = () => (outb(CMD, 0x20), inb(DATA));
  outb(CMD, 0xad);
  assert.equal(ccb() & 0x10, 0x10);
  outb(CMD, 0xa7);
  assert.equal(ccb() & 0x30, 0x30);
  kbd.send(0x1c);
  aux.send(0x08);
  assert.equal(inb(CMD) & 0x01, 0);
  assert.equal(irq1.level | irq12.level, 0);
  outb(CMD, 0xa8);
  assert.equal(inb(CMD) & 0x21, 0x21, 'mouse byte in the output buffer');
  assert.equal(irq12.level, 1);
  assert.equal(inb(DATA), 0x08);
  assert.equal(irq12.level, 0);
  assert.equal(ccb() & 0x20, 0);
  outb(CMD, 0xae);
  assert.equal(irq1.level, 1);
  assert.equal(inb(CMD) & 0x21, 0x01);
  assert.equal(inb(DATA), 0x1c);
});

test('IRQ 1 and IRQ 12 follow the output buffer and the command byte interrupt enables', () => {
  const { inb, outb, kbd, aux, irq1, irq12 } = setup();
  outb(CMD, 0x60);
  outb(DATA, 0x00); // both interrupts off, translation off
  kbd.send(0x1c);
  assert.equal(irq1.level, 0);
  assert.equal(inb(DATA), 0x1c);
  outb(CMD, 0x60);
  outb(DATA, 0x03);
  kbd.send(0x1c, 0xf0, 0x1c);
  assert.equal(irq1.level, 1);
  assert.equal(inb(DATA), 0x1c);
  assert.equal(irq1.raises, 2, 'the next byte makes a new edge');
  assert.equal(inb(DATA), 0xf0);
  assert.equal(inb(DATA), 0x1c);
  assert.equal(irq1.level, 0);
  aux.send(0x09, 0x01, 0x02);
  assert.equal(irq12.level, 1);
  assert.equal(irq1.level, 0);
  assert.deepEqual([inb(DATA), inb(DATA), inb(DATA)], [0x09, 0x01, 0x02]);
  assert.equal(irq12.level, 0);
  assert.equal(inb(DATA), 0x02, 'an empty buffer reads its last byte again');
});

test('translation: set 2 bytes become set 1 while XLATE is set', () => {
  const { outb, kbd, drain } = setup();
  outb(CMD, 0x60);
  outb(DATA, 0x41);
  kbd.send(0x1c, 0xf0, 0x1c, 0xe0, 0x75, 0xe0, 0xf0, 0x75, 0xfa, 0xaa, 0xab, 0x83);
  assert.deepEqual(drain(), [0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8, 0xfa, 0xaa, 0xab, 0x41]);
  outb(CMD, 0x60);
  outb(DATA, 0x01);
  kbd.send(0xf0, 0x1c);
  assert.deepEqual(drain(), [0xf0, 0x1c]);
});

test('output port: 0xD1 drives A20 and reset, 0xD0 reads it back, 0xDD/0xDF, 0xFE pulses reset', () => {
  const { inb, outb, events, kbc } = setup();
  assert.equal(kbc.a20, true);
  outb(CMD, 0xd0);
  assert.equal(inb(DATA) & 0x03, 0x03);
  outb(CMD, 0xd1);
  outb(DATA, 0xdd); // A20 off, reset line high
  assert.deepEqual(events, ['a20:false']);
  assert.equal(kbc.a20, false);
  outb(CMD, 0xd0);
  assert.equal(inb(DATA) & 0x03, 0x01);
  outb(CMD, 0xdf);
  assert.equal(kbc.a20, true);
  outb(CMD, 0xdd);
  assert.equal(kbc.a20, false);
  outb(CMD, 0xdf);
  outb(CMD, 0xff); // pulse nothing
  assert.deepEqual(events, ['a20:false', 'a20:true', 'a20:false', 'a20:true']);
  outb(CMD, 0xfe);
  assert.deepEqual(events.slice(4), ['reset']);
  outb(CMD, 0xd1);
  outb(DATA, 0xde); // bit 0 clear holds the CPU in reset
  assert.deepEqual(events.slice(5), ['reset']);
});

test('0xD2/0xD3 write the output buffer as keyboard or mouse; 0xD4 writes to the mouse; data goes to the keyboard', () => {
  const { inb, outb, kbd, aux, irq1, irq12 } = setup();
  outb(CMD, 0xd2);
  outb(DATA, 0x5a);
  assert.equal(irq1.level, 1);
  assert.equal(inb(CMD) & 0x21, 0x01);
  assert.equal(inb(DATA), 0x5a);
  outb(CMD, 0xd3);
  outb(DATA, 0xa5);
  assert.equal(irq12.level, 1);
  assert.equal(inb(CMD) & 0x21, 0x21);
  assert.equal(inb(DATA), 0xa5);
  outb(CMD, 0xd4);
  outb(DATA, 0xf4);
  outb(DATA, 0xff);
  assert.deepEqual(aux.got, [0xf4]);
  assert.deepEqual(kbd.got, [0xff]);
  assert.equal(inb(CMD) & 0x08, 0, 'last write was data');
});

test('a byte for an empty connector times out: status TIMEOUT and 0xFE', () => {
  const ports = new IoPorts();
  const irq12 = new TestIrqLine();
  new I8042('i8042', ports, new TestIrqLine(), irq12);
  ports.write8[CMD](CMD, 0xd4);
  ports.write8[DATA](DATA, 0xf2);
  assert.equal(ports.read8[CMD](CMD) & 0x61, 0x61);
  assert.equal(irq12.level, 1);
  assert.equal(ports.read8[DATA](DATA), 0xfe);
});

test('controller replies come before device data already waiting', () => {
  const { inb, outb, kbd, drain } = setup();
  outb(CMD, 0x60);
  outb(DATA, 0x01);
  kbd.send(0x11, 0x22);
  outb(CMD, 0x20); // the buffer holds 0x11: the reply waits, then goes before 0x22
  assert.deepEqual(drain(), [0x11, 0x01, 0x22]);
  outb(CMD, 0xc0);
  assert.equal(inb(DATA), 0x80);
  outb(CMD, 0xa4);
  assert.equal(inb(DATA), 0xf1);
});

test('with a real keyboard and mouse: reset, identify through translation, mouse via 0xD4', () => {
  const ports = new IoPorts();
  const clock = new Clock();
  const kbc = new I8042('i8042', ports, new TestIrqLine(), new TestIrqLine());
  const kbd = new Ps2Keyboard('kbd', clock, kbc.kbdPort);
  new Ps2Mouse('mouse', kbc.auxPort);
  const outb = (p: number, v: number) => ports.write8[p](p, v);
  const inb = (p: number) => ports.read8[p](p);
  const drain = () => {
    const r: number[] = [];
    while (inb(CMD) & 0x01) r.push(inb(DATA));
    return r;
  };
  outb(CMD, 0x60);
  outb(DATA, 0x43); // XLATE, SYS, both interrupts
  outb(DATA, 0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa]);
  outb(DATA, 0xf2);
  assert.deepEqual(drain(), [0xfa, 0xab, 0x41]);
  kbd.keyDown(0x1c);
  kbd.keyUp(0x1c);
  assert.deepEqual(drain(), [0x1e, 0x9e]);
  outb(CMD, 0xd4);
  outb(DATA, 0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa, 0x00]);
});

test('save and load: a restored controller continues exactly as the original', () => {
  const a = setup();
  a.outb(CMD, 0x60);
  a.outb(DATA, 0x47);
  a.kbd.send(0xf0); // translated prefix waiting for its key
  a.outb(CMD, 0xd1); // a command waiting for its data byte
  const s = a.kbc.saveState();
  const b = setup();
  b.kbc.loadState(s);
  assert.deepEqual(b.kbc.saveState(), s);
  for (const t of [a, b]) {
    t.outb(DATA, 0xdd);
    t.kbd.send(0x1c, 0x1c);
    t.aux.send(0x08);
  }
  assert.deepEqual(b.drain(), a.drain());
  assert.deepEqual(b.events, a.events.slice(a.events.length - b.events.length));
  assert.deepEqual(b.kbc.saveState(), a.kbc.saveState());
  assert.equal(b.irq1.level, a.irq1.level);
  assert.throws(() => b.kbc.loadState({ ...s, ram: new Uint8Array(4) }));
  assert.deepEqual(b.kbc.saveState(), a.kbc.saveState());
});

test('fuzz: random port traffic with a keyboard and mouse attached never throws', () => {
  let x = 0x9e3779b9;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const ports = new IoPorts();
  const clock = new Clock();
  let resets = 0;
  const kbc = new I8042('i8042', ports, new TestIrqLine(), new TestIrqLine(), { onA20() {}, onReset: () => resets++ });
  const kbd = new Ps2Keyboard('kbd', clock, kbc.kbdPort);
  const mouse = new Ps2Mouse('mouse', kbc.auxPort);
  for (let i = 0; i < 30000; i++) {
    const r = rnd();
    const v = (r >>> 8) & 0xff;
    switch (r & 7) {
      case 0:
        ports.write8[CMD](CMD, v);
        break;
      case 1:
      case 2:
        ports.write8[DATA](DATA, v);
        break;
      case 3:
        ports.read8[CMD](CMD);
        break;
      case 4:
        ports.read8[DATA](DATA);
        break;
      case 5:
        if (r & 0x10000) kbd.keyDown(v);
        else kbd.keyUp(v | (r & 0x20000 ? 0xe000 : 0));
        break;
      case 6:
        mouse.move((v << 24) >> 24, ((r >>> 16) << 24) >> 24, r >>> 24, (r >>> 28) - 8);
        break;
      default:
        clock.advanceTo(clock.nowNs + (r >>> 12) * 100);
    }
  }
  const s = kbc.saveState();
  const ports2 = new IoPorts();
  const kbc2 = new I8042('i8042', ports2, new TestIrqLine(), new TestIrqLine());
  kbc2.loadState(s);
  assert.deepEqual(kbc2.saveState(), s);
  assert.ok(resets >= 0);
});

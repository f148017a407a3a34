import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Ps2Device, Ps2Port } from './ps2.js';
import { Ps2Mouse } from './ps2mouse.js';

class TestPort implements Ps2Port {
  dev: Ps2Device | null = null;
  ready = 0;
  attach(dev: Ps2Device): void {
    this.dev = dev;
  }
  dataReady(): void {
    this.ready++;
  }
}

function setup() {
  const port = new TestPort();
  const mouse = new Ps2Mouse('mouse', port);
  const drain = () => {
    const r: number[] = [];
    for (let b = mouse.read(); b >= 0; b = mouse.read()) r.push(b);
    return r;
  };
  const cmd = (...bytes: number[]) => {
    for (const b of bytes) mouse.write(b);
    return drain();
  };
  return { port, mouse, drain, cmd };
}

test('reset answers ACK, BAT passed, ID 0; identify answers 0', () => {
  const { port, mouse, cmd } = setup();
  assert.equal(port.dev, mouse);
  assert.deepEqual(cmd(0xff), [0xfa, 0xaa, 0x00]);
  assert.deepEqual(cmd(0xf2), [0xfa, 0x00]);
  assert.deepEqual(cmd(0x12), [0xfe], 'not a command');
});

test('status request reports mode, scaling, buttons, resolution and sample rate', () => {
  const { mouse, cmd } = setup();
  assert.deepEqual(cmd(0xe9), [0xfa, 0x00, 0x02, 100]);
  assert.deepEqual(cmd(0xe8, 0x03, 0xf3, 40, 0xe7, 0xf4, 0xf0), [0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa]);
  mouse.move(0, 0, 0x05);
  assert.deepEqual(cmd(0xe9), [0xfa, 0x40 | 0x20 | 0x10 | 0x04 | 0x02, 0x03, 40]);
  assert.deepEqual(cmd(0xe8, 0x09), [0xfa, 0xfe], 'bad resolution');
  assert.deepEqual(cmd(0xf3, 33), [0xfa, 0xfe], 'bad sample rate');
  assert.deepEqual(cmd(0xf6, 0xe9), [0xfa, 0xfa, 0x06, 0x02, 100], 'defaults; the buttons are still held');
});

test('IntelliMouse knock 200/100/80 gives ID 3 and 4-byte packets; 200/200/80 gives ID 4', () => {
  const { mouse, cmd } = setup();
  assert.deepEqual(cmd(0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2), [0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x03]);
  assert.equal(mouse.deviceId, 3);
  cmd(0xf4);
  mouse.move(1, 0, 0, 2);
  assert.deepEqual(cmd(), [0x08, 0x01, 0x00, 0x02]);
  mouse.move(0, 0, 0, -1);
  assert.deepEqual(cmd(), [0x08, 0x00, 0x00, 0xff]);
  assert.deepEqual(cmd(0xf3, 200, 0xf3, 200, 0xf3, 80, 0xf2).slice(-1), [0x04]);
  cmd(0xf4);
  mouse.move(0, 0, 0x18, 1); // buttons 4 and 5, wheel down
  assert.deepEqual(cmd(), [0x08, 0x00, 0x00, 0x31]);
  assert.deepEqual(cmd(0xff), [0xfa, 0xaa, 0x00], 'reset returns to the plain protocol');
  assert.equal(mouse.deviceId, 0);
});

test('stream mode: packets with sign bits, screen-down movement reported as negative Y', () => {
  const { mouse, cmd } = setup();
  mouse.move(5, 5, 1);
  assert.deepEqual(cmd(), [], 'data reporting is off after reset');
  cmd(0xf4);
  mouse.move(10, -5, 0x01); // right 10, up 5, left button
  assert.deepEqual(cmd(), [0x09, 0x0a, 0x05]);
  mouse.move(-3, 4, 0x02);
  assert.deepEqual(cmd(), [0x08 | 0x10 | 0x20 | 0x02, 0xfd, 0xfc]);
  mouse.move(0, 0, 0); // button release alone is reported
  assert.deepEqual(cmd(), [0x08, 0x00, 0x00]);
  mouse.move(0, 0, 0);
  assert.deepEqual(cmd(), [], 'nothing new: no packet');
});

test('large and queued movement is split into packets, none lost when the buffer fills', () => {
  const { mouse, cmd, drain } = setup();
  cmd(0xf4);
  for (let i = 0; i < 10; i++) mouse.move(100, 0, 0);
  let sum = 0;
  const bytes = drain();
  assert.equal(bytes.length % 3, 0);
  for (let i = 0; i < bytes.length; i += 3) sum += bytes[i] & 0x10 ? bytes[i + 1] - 256 : bytes[i + 1];
  assert.equal(sum, 1000);
  mouse.move(-600, 0, 0);
  const p = drain();
  assert.deepEqual(p.slice(0, 3), [0x18, 0x01, 0x00]); // -255
});

test('remote mode: Read Data sends one packet of the movement since the last', () => {
  const { mouse, cmd } = setup();
  cmd(0xf0);
  mouse.move(7, 0, 0);
  mouse.move(1, -2, 0);
  assert.deepEqual(cmd(), []);
  assert.deepEqual(cmd(0xeb), [0xfa, 0x08, 0x08, 0x02]);
  assert.deepEqual(cmd(0xeb), [0xfa, 0x08, 0x00, 0x00]);
});

test('2:1 scaling follows the IBM table in stream mode', () => {
  const { mouse, cmd } = setup();
  cmd(0xe7, 0xf4);
  const xs: number[] = [];
  for (const d of [1, 2, 3, 4, 5, 6, -4]) {
    mouse.move(d, 0, 0);
    xs.push((cmd()[1] << 24) >> 24);
  }
  assert.deepEqual(xs, [1, 1, 3, 6, 9, 12, -6]);
});

test('wrap mode echoes bytes until Reset Wrap Mode', () => {
  const { cmd } = setup();
  assert.deepEqual(cmd(0xee), [0xfa]);
  assert.deepEqual(cmd(0x12, 0xf2), [0x12, 0xf2]);
  assert.deepEqual(cmd(0xec, 0xf2), [0xfa, 0xfa, 0x00]);
});

test('save and load: a restored mouse continues exactly as the original', () => {
  const a = setup();
  a.cmd(0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf4);
  for (let i = 0; i < 12; i++) a.mouse.move(90, -70, i & 7, 1);
  a.mouse.read();
  a.mouse.write(0xe8); // waiting for the argument
  const s = a.mouse.saveState();
  const b = setup();
  b.mouse.loadState(s);
  assert.deepEqual(b.mouse.saveState(), s);
  const run = (t: typeof a) => {
    t.mouse.write(0x01);
    const r = t.drain();
    t.mouse.move(3, 3, 1, -1);
    r.push(...t.drain());
    return r;
  };
  assert.deepEqual(run(b), run(a));
  assert.deepEqual(b.mouse.saveState(), a.mouse.saveState());
  assert.throws(() => b.mouse.loadState({ ...s, rateHistory: new Uint8Array(2) }));
});

test('fuzz: random commands, moves and reads never throw', () => {
  let x = 0xdeadbeef;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const t = setup();
  for (let i = 0; i < 30000; i++) {
    const r = rnd();
    const v = (r >>> 8) & 0xff;
    switch (r & 3) {
      case 0:
        t.mouse.write(r & 0x100 ? 0xe6 + (v % 26) : v);
        break;
      case 1:
        t.mouse.read();
        break;
      default:
        t.mouse.move(((r >>> 8) << 20) >> 20, (r << 12) >> 20, r >>> 27, ((r >>> 4) & 15) - 8);
    }
  }
  t.mouse.move(NaN, Infinity, -1, 1e300);
  const s = t.mouse.saveState();
  const u = setup();
  u.mouse.loadState(s);
  assert.deepEqual(u.mouse.saveState(), s);
});

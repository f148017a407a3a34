import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Clock } from '../time/clock.js';
import { KEY } from './backends.js';
import type { Ps2Device, Ps2Port } from './ps2.js';
import { KEY_QUEUE_EVENTS, Ps2Keyboard } from './ps2kbd.js';

/** The controller side of the connector, as a test sees it. */
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
  const clock = new Clock();
  const port = new TestPort();
  const kbd = new Ps2Keyboard('kbd', clock, port);
  const drain = () => {
    const r: number[] = [];
    for (let b = kbd.read(); b >= 0; b = kbd.read()) r.push(b);
    return r;
  };
  const cmd = (...bytes: number[]) => {
    for (const b of bytes) kbd.write(b);
    return drain();
  };
  const step = (ns: number) => clock.advanceTo(clock.nowNs + ns);
  return { clock, port, kbd, drain, cmd, step };
}

test('plugs into its connector; reset answers ACK and BAT passed; identify answers AB 83', () => {
  const { port, kbd, cmd } = setup();
  assert.equal(port.dev, kbd);
  assert.deepEqual(cmd(0xff), [0xfa, 0xaa]);
  assert.ok(port.ready > 0);
  assert.deepEqual(cmd(0xf2), [0xfa, 0xab, 0x83]);
  assert.deepEqual(cmd(0xee), [0xee]);
  assert.deepEqual(cmd(0x42), [0xfe], 'not a command');
  kbd.write(0xf2);
  assert.equal(kbd.read(), 0xfa);
  assert.deepEqual(cmd(0xfe), [0xfa, 0xab, 0x83], 'resend repeats the last byte sent, then the rest');
});

test('LEDs and scan code sets', () => {
  const { kbd, cmd } = setup();
  assert.deepEqual(cmd(0xed, 0x07), [0xfa, 0xfa]);
  assert.equal(kbd.leds, 7);
  assert.deepEqual(cmd(0xf0, 0x00), [0xfa, 0xfa, 0x02]);
  assert.deepEqual(cmd(0xf0, 0x01), [0xfa, 0xfa]);
  assert.deepEqual(cmd(0xf0, 0x00), [0xfa, 0xfa, 0x01]);
  kbd.keyDown(KEY.KeyA);
  kbd.keyUp(KEY.KeyA);
  kbd.keyDown(KEY.ArrowUp);
  kbd.keyUp(KEY.ArrowUp);
  assert.deepEqual(cmd(), [0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);
  assert.deepEqual(cmd(0xf0, 0x03), [0xfa, 0xfe], 'set 3 is not supported');
  assert.deepEqual(cmd(0xf0, 0x00), [0xfa, 0xfa, 0x01]);
  assert.deepEqual(cmd(0xff), [0xfa, 0xaa]);
  assert.deepEqual(cmd(0xf0, 0x00), [0xfa, 0xfa, 0x02], 'reset restores set 2');
});

test('set 2 make and break codes, extended keys, PrintScreen and Pause', () => {
  const { kbd, drain } = setup();
  kbd.keyDown(KEY.KeyA);
  kbd.keyUp(KEY.KeyA);
  kbd.keyDown(KEY.ControlRight);
  kbd.keyUp(KEY.ControlRight);
  assert.deepEqual(drain(), [0x1c, 0xf0, 0x1c, 0xe0, 0x14, 0xe0, 0xf0, 0x14]);
  kbd.keyDown(KEY.PrintScreen);
  kbd.keyUp(KEY.PrintScreen);
  assert.deepEqual(drain(), [0xe0, 0x12, 0xe0, 0x7c, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12]);
  kbd.keyDown(KEY.Pause);
  kbd.keyUp(KEY.Pause);
  assert.deepEqual(drain(), [0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
  kbd.keyDown(0x1234); // not a key
  kbd.keyUp(0x99);
  assert.deepEqual(drain(), []);
});

test('disable (F5) stops scanning, enable (F4) restarts it and clears the output buffer', () => {
  const { kbd, cmd, drain } = setup();
  assert.deepEqual(cmd(0xf5), [0xfa]);
  kbd.keyDown(KEY.KeyB);
  kbd.keyUp(KEY.KeyB);
  assert.deepEqual(drain(), []);
  assert.deepEqual(cmd(0xf4), [0xfa]);
  kbd.keyDown(KEY.KeyB);
  kbd.keyUp(KEY.KeyB);
  kbd.write(0xf2);
  assert.deepEqual(drain(), [0x32, 0xf0, 0x32, 0xfa, 0xab, 0x83], 'identify queues behind waiting key bytes');
  kbd.keyDown(KEY.KeyB);
  kbd.write(0xf4);
  assert.deepEqual(drain(), [0xfa]);
});

test('a burst of key events waits in the host queue and is not lost', () => {
  const { kbd, drain } = setup();
  const keys = [KEY.KeyH, KEY.KeyE, KEY.KeyL, KEY.KeyO, KEY.Space, KEY.ArrowLeft];
  const want: number[] = [];
  for (let i = 0; i < 60; i++) {
    const k = keys[i % keys.length];
    kbd.keyDown(k);
    kbd.keyUp(k);
    const ext = k > 0xff ? [0xe0] : [];
    want.push(...ext, k & 0xff, ...ext, 0xf0, k & 0xff);
  }
  assert.deepEqual(drain(), want);
  for (let i = 0; i < KEY_QUEUE_EVENTS + 40; i++) i & 1 ? kbd.keyUp(KEY.KeyZ) : kbd.keyDown(KEY.KeyZ);
  assert.ok(kbd.droppedEvents > 0, 'beyond the queue, events are dropped and counted');
});

test('the argument of a command is not interleaved with key bytes', () => {
  const { kbd, drain } = setup();
  kbd.write(0xed);
  assert.equal(kbd.read(), 0xfa);
  kbd.keyDown(KEY.KeyQ);
  assert.equal(kbd.read(), -1, 'no scanning while the LED byte is awaited');
  kbd.write(0x02);
  assert.deepEqual(drain(), [0xfa, 0x15]);
});

test('typematic: a held key repeats after the delay at the programmed rate; host repeats are ignored', () => {
  const { kbd, cmd, drain, step } = setup();
  kbd.keyDown(KEY.KeyA);
  kbd.keyDown(KEY.KeyA); // host auto-repeat: ignored
  assert.deepEqual(drain(), [0x1c]);
  step(500_000_000 - 1);
  assert.deepEqual(drain(), []);
  step(1);
  assert.deepEqual(drain(), [0x1c], 'default delay 500 ms');
  const period = 11 * 2 * 4_166_667; // default rate 0x0B: 10.9 characters/s
  step(period * 3);
  assert.deepEqual(drain(), [0x1c, 0x1c, 0x1c]);
  kbd.keyUp(KEY.KeyA);
  step(period * 5);
  assert.deepEqual(drain(), [0xf0, 0x1c]);
  assert.deepEqual(cmd(0xf3, 0x00), [0xfa, 0xfa]); // 250 ms, 30 characters/s
  kbd.keyDown(KEY.ShiftLeft);
  kbd.keyDown(KEY.KeyX);
  step(250_000_000 + 8 * 4_166_667);
  assert.deepEqual(drain(), [0x12, 0x22, 0x22, 0x22], 'the last key pressed repeats');
  kbd.keyUp(KEY.ShiftLeft);
  step(8 * 4_166_667);
  assert.deepEqual(drain(), [0xf0, 0x12, 0x22]);
});

test('save and load: a restored keyboard continues exactly as the original', () => {
  const a = setup();
  const drive = (t: typeof a) => {
    t.cmd(0xf0, 0x01);
    t.kbd.keyDown(KEY.KeyW);
    for (let i = 0; i < 20; i++) t.kbd.keyDown(KEY.Digit1 + (i & 1) * 8) , t.kbd.keyUp(KEY.Digit1 + (i & 1) * 8);
    t.kbd.write(0xed);
    t.step(600_000_000);
  };
  drive(a);
  a.kbd.read();
  const s = a.kbd.saveState();
  const b = setup();
  b.clock.loadState(a.clock.saveState());
  b.kbd.loadState(s);
  assert.deepEqual(b.kbd.saveState(), s);
  const run = (t: typeof a) => {
    t.kbd.write(0x04);
    const r = t.drain();
    t.step(300_000_000);
    r.push(...t.drain());
    t.kbd.keyUp(KEY.KeyW);
    r.push(...t.drain());
    return r;
  };
  const ra = run(a);
  assert.ok(ra.length > 20);
  assert.deepEqual(run(b), ra);
  assert.deepEqual(b.kbd.saveState(), a.kbd.saveState());
  assert.throws(() => b.kbd.loadState({ ...s, out: new Uint8Array(1) }));
});

test('fuzz: random commands, key events and time never throw', () => {
  let x = 0x12345678;
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
    switch (r & 7) {
      case 0:
      case 1:
        t.kbd.write(r & 0x100 ? 0xed + (v % 19) : v);
        break;
      case 2:
      case 3:
        t.kbd.read();
        break;
      case 4:
        t.kbd.keyDown(r & 0x10000 ? 0xe000 | v : v);
        break;
      case 5:
        t.kbd.keyUp(r & 0x10000 ? 0xe000 | v : v);
        break;
      default:
        t.step((r >>> 12) * 1000);
    }
  }
  const s = t.kbd.saveState();
  const u = setup();
  u.kbd.loadState(s);
  assert.deepEqual(u.kbd.saveState(), s);
});

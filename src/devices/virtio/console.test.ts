import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzDevice, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { CONSOLE_INPUT_MAX, VirtioConsole } from './console.js';

function setup(): { d: VirtioDriver; con: VirtioConsole; out: number[] } {
  const out: number[] = [];
  const con = new VirtioConsole('con', { write: (b) => out.push(...b) });
  const d = new VirtioDriver(con);
  d.init({ eventIdx: false });
  return { d, con, out };
}

test('virtio-console: guest output reaches the host; host input waits for receive buffers', () => {
  const { d, con, out } = setup();
  d.request(1, [{ out: new TextEncoder().encode('hello ') }, { out: new TextEncoder().encode('host') }]);
  assert.equal(Buffer.from(out).toString(), 'hello host');
  con.receive(new TextEncoder().encode('typed'));
  assert.equal(d.takeUsed(0).length, 0, 'no buffer posted yet');
  const u = d.request(0, [{ inLen: 3 }]);
  assert.equal(Buffer.from(u!.data.subarray(0, u!.len)).toString(), 'typ');
  const v = d.request(0, [{ inLen: 64 }]);
  assert.equal(Buffer.from(v!.data.subarray(0, v!.len)).toString(), 'ed');
  d.add(0, [{ inLen: 16 }]);
  d.notify(0);
  con.receive(new TextEncoder().encode('now'));
  const [w] = d.takeUsed(0);
  assert.equal(Buffer.from(w.data.subarray(0, w.len)).toString(), 'now');
});

test('virtio-console: input beyond the buffer is dropped and counted; pending input survives save/load', () => {
  const { d, con } = setup();
  con.receive(new Uint8Array(CONSOLE_INPUT_MAX + 10).fill(0x41));
  assert.equal(con.dropped, 10);
  const out2: number[] = [];
  const con2 = new VirtioConsole('con', { write: (b) => out2.push(...b) });
  const d2 = new VirtioDriver(con2);
  d2.adopt(d);
  d2.pci.loadState(d.pci.saveState());
  assert.deepEqual(d2.pci.saveState(), d.pci.saveState());
  assert.equal(d2.request(0, [{ inLen: 100 }])?.len, 100);
});

test('fuzz: virtio-console survives seeded bad rings', () => {
  for (let seed = 1; seed <= 15; seed++) {
    const { d, con } = setup();
    fuzzDevice(d, seed, 300, (drv, check) => {
      con.receive(new Uint8Array([seed]));
      const u = drv.request(0, [{ inLen: 8 }]);
      if (check) assert.ok(u && u.len >= 1);
    });
  }
});

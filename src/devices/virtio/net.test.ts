import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetBackend, NetPort } from '../backends.js';
import { fuzzDevice, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { NET_HDR_BYTES, VirtioNet } from './net.js';

/** A backend that records sent frames and queues frames for the guest until deliver(). */
class TestLink implements NetBackend {
  sent: Uint8Array[] = [];
  queue: Uint8Array[] = [];
  wakes = 0;
  port!: NetPort;
  attach(port: NetPort, wake: () => void): void {
    this.port = port;
    this.wake = wake;
  }
  wake: () => void = () => {};
  send(frame: Uint8Array): void {
    this.sent.push(frame.slice());
  }
  deliver(): void {
    while (this.queue.length && this.port.canReceive()) this.port.receive(this.queue.shift()!);
  }
  close(): void {}
}

const MAC = new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

function setup(): { d: VirtioDriver; link: TestLink; net: VirtioNet } {
  const link = new TestLink();
  const net = new VirtioNet('net0', link, MAC);
  const d = new VirtioDriver(net);
  net.setWake(() => link.wakes++);
  d.init({ eventIdx: false });
  return { d, link, net };
}

test('virtio-net: the MAC in config space; transmit strips the header', () => {
  const { d, link } = setup();
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => d.deviceConfig(i, 1)), [...MAC]);
  assert.equal(d.deviceConfig(6, 2), 1, 'link up');
  d.request(1, [{ out: new Uint8Array(NET_HDR_BYTES) }, { out: frame(60, 7) }]);
  assert.deepEqual(link.sent, [frame(60, 7)]);
});

test('virtio-net: received frames wait for buffers, and posting buffers wakes the backend', () => {
  const { d, link, net } = setup();
  link.queue.push(frame(64, 1), frame(1514, 2));
  link.deliver();
  assert.equal(net.canReceive(), false);
  for (let i = 0; i < 2; i++) d.add(0, [{ inLen: NET_HDR_BYTES + 1514 }]);
  d.notify(0);
  assert.equal(link.wakes, 1);
  link.deliver();
  const got = d.takeUsed(0);
  assert.equal(got.length, 2);
  assert.equal(got[0].len, NET_HDR_BYTES + 64);
  assert.deepEqual(got[0].data.subarray(NET_HDR_BYTES, NET_HDR_BYTES + 64), frame(64, 1));
  assert.equal(got[0].data[10], 1, 'num_buffers');
  assert.deepEqual(got[1].data.subarray(NET_HDR_BYTES), frame(1514, 2));
  assert.equal(d.intx.level, 1);
});

test('fuzz: virtio-net survives seeded bad rings', () => {
  for (let seed = 1; seed <= 15; seed++) {
    const { d, link } = setup();
    fuzzDevice(d, seed, 300, (drv, check) => {
      drv.add(0, [{ inLen: 1600 }]);
      drv.notify(0);
      link.queue.push(frame(60, seed));
      link.deliver();
      const u = drv.takeUsed(0);
      if (check) assert.equal(u[0]?.len, NET_HDR_BYTES + 60);
    });
  }
});

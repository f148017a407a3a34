import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetBackend, NetPort } from '../backends.js';
import { fuzzDevice, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { NET_HDR_BYTES, VirtioNet } from './net.js';
import { fold, sum16 } from '../netoffload.js';

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

// ---- offloads ----

const F_CSUM = 1 << 0;
const F_GUEST_CSUM = 1 << 1;
const F_GUEST_TSO4 = 1 << 7;
const F_HOST_TSO4 = 1 << 11;

function offloadSetup(features: number): { d: VirtioDriver; link: TestLink; net: VirtioNet } {
  const link = new TestLink();
  const net = new VirtioNet('net0', link, MAC);
  const d = new VirtioDriver(net);
  d.init({ features: [features, 0] });
  return { d, link, net };
}

const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const pseudoOf = (f: Uint8Array, len: number) => sum16(f, 26, 34, 6 + len);

/** A TCP/IPv4 frame 10.0.2.15:40000 -> 10.0.2.2:80 with `payload` bytes; `check`: 'full' (valid), 'pseudo' (the pseudo-header sum, as a driver leaving it to the device), 'pseudo0' (the sum without the length, as for TSO). */
function tcpFrame(payload: number, check: 'full' | 'pseudo' | 'pseudo0', seq = 1000): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payload);
  f.set([0x52, 0x55, 0x0a, 0, 2, 2, ...MAC, 0x08, 0x00]);
  f[14] = 0x45;
  f[16] = (20 + 20 + payload) >>> 8;
  f[17] = (20 + 20 + payload) & 0xff;
  f[18] = 0x12;
  f[19] = 0x34;
  f[20] = 0x40; // DF
  f[22] = 64;
  f[23] = 6;
  f.set([10, 0, 2, 15, 10, 0, 2, 2], 26);
  const ipc = ~fold(sum16(f, 14, 34)) & 0xffff;
  f[24] = ipc >>> 8;
  f[25] = ipc & 0xff;
  f[34] = 40000 >>> 8;
  f[35] = 40000 & 0xff;
  f[37] = 80;
  f.set([seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff], 38);
  f[46] = 5 << 4;
  f[47] = 0x18; // ACK PSH
  f[48] = 0xff;
  f[49] = 0xff;
  for (let i = 0; i < payload; i++) f[54 + i] = (i * 7) & 0xff;
  const c = check === 'full' ? ~fold(sum16(f, 34, f.length, pseudoOf(f, 20 + payload))) & 0xffff : fold(check === 'pseudo' ? pseudoOf(f, 20 + payload) : pseudoOf(f, 0));
  f[50] = c >>> 8;
  f[51] = c & 0xff;
  return f;
}

const tcpOk = (f: Uint8Array) => fold(sum16(f, 34, 14 + be16(f, 16), pseudoOf(f, be16(f, 16) - 20))) === 0xffff;
const ipOk = (f: Uint8Array) => fold(sum16(f, 14, 34)) === 0xffff;

function txHdr(flags: number, gsoType: number, gsoSize: number, csumStart: number, csumOffset: number): Uint8Array {
  const h = new Uint8Array(NET_HDR_BYTES);
  h[0] = flags;
  h[1] = gsoType;
  h[4] = gsoSize & 0xff;
  h[5] = gsoSize >>> 8;
  h[6] = csumStart & 0xff;
  h[7] = csumStart >>> 8;
  h[8] = csumOffset;
  return h;
}

test('virtio-net offloads: CSUM completes a checksum the driver left; HOST_TSO4 cuts a 10000-byte segment into MSS frames', () => {
  const { d, link, net } = offloadSetup(F_CSUM | F_HOST_TSO4);
  const plain = tcpFrame(300, 'pseudo');
  d.request(1, [{ out: txHdr(1, 0, 0, 34, 16) }, { out: plain }]);
  assert.equal(link.sent.length, 1);
  assert.ok(tcpOk(link.sent[0]), 'the device filled in the TCP checksum');
  link.sent = [];
  const big = tcpFrame(10000, 'pseudo'); // Linux leaves the pseudo-header sum over the whole segment
  big[47] = 0x19; // FIN too: only on the last segment
  d.request(1, [{ out: txHdr(1, 1, 1448, 34, 16) }, { out: big }]);
  assert.equal(link.sent.length, 7);
  let seq = 1000;
  let bytes = 0;
  link.sent.forEach((f, i) => {
    assert.ok(f.length <= 1514);
    assert.ok(ipOk(f) && tcpOk(f), `segment ${i} checksums`);
    assert.equal(be32(f, 38), seq);
    assert.equal(be16(f, 16), f.length - 14, 'IP total length');
    assert.equal(f[47] & 1, i === 6 ? 1 : 0, 'FIN only on the last');
    assert.deepEqual(f.subarray(54), big.subarray(54 + bytes, 54 + bytes + f.length - 54));
    seq += f.length - 54;
    bytes += f.length - 54;
  });
  assert.equal(bytes, 10000);
  assert.equal(net.txDropped, 0);
  // a GSO header whose offsets do not fit the packet: dropped, nothing read outside it
  d.request(1, [{ out: txHdr(1, 1, 1448, 4000, 16) }, { out: tcpFrame(3000, 'pseudo0') }]);
  assert.equal(link.sent.length, 7);
  assert.equal(net.txDropped, 1);
});

test('virtio-net offloads: GUEST_CSUM marks verified frames DATA_VALID; GUEST_TSO4 takes a large receive as one GSO packet', () => {
  const { d, link, net } = offloadSetup(F_GUEST_CSUM | F_GUEST_TSO4);
  assert.ok(net.largeReceive() >= 60000);
  d.add(0, [{ inLen: NET_HDR_BYTES + 1514 }]);
  d.add(0, [{ inLen: NET_HDR_BYTES + 1514 }]);
  const bad = tcpFrame(500, 'full');
  bad[60] ^= 1;
  link.queue.push(tcpFrame(500, 'full'), bad);
  link.deliver();
  const [good, corrupt] = d.takeUsed(0);
  assert.equal(good.data[0], 2, 'DATA_VALID');
  assert.equal(corrupt.data[0], 0, 'a bad checksum is left to the guest');
  // a 30000-byte segment standing for 1460-byte ones, into a big-packets buffer (several descriptors)
  d.add(0, [{ inLen: NET_HDR_BYTES + 100 }, { inLen: 4096 }, { inLen: 65536 }]);
  const large = tcpFrame(30000, 'full');
  link.port.receive(large, 1460);
  const [u] = d.takeUsed(0);
  assert.equal(u.len, NET_HDR_BYTES + large.length);
  const h = u.data;
  assert.equal(h[0], 1, 'NEEDS_CSUM');
  assert.equal(h[1], 1, 'GSO_TCPV4');
  assert.equal(h[2] | (h[3] << 8), 54, 'hdr_len');
  assert.equal(h[4] | (h[5] << 8), 1460, 'gso_size');
  assert.equal(h[6] | (h[7] << 8), 34, 'csum_start');
  assert.equal(h[8] | (h[9] << 8), 16, 'csum_offset');
  const got = h.subarray(NET_HDR_BYTES);
  assert.equal(be16(got, 50), fold(pseudoOf(large, 30020)), 'the checksum field holds the pseudo-header sum');
  assert.deepEqual(got.subarray(54, large.length), large.subarray(54));
  // a large receive that does not fit the buffer is dropped, not cut short
  d.add(0, [{ inLen: NET_HDR_BYTES + 1514 }]);
  link.port.receive(large, 1460);
  assert.equal(d.takeUsed(0)[0].len, 0);
  assert.equal(net.rxDropped, 1);
});

test('virtio-net offloads: without GUEST_TSO4 no large receives are asked for; without GUEST_CSUM no DATA_VALID', () => {
  const { d, link, net } = offloadSetup(0);
  assert.equal(net.largeReceive(), 0);
  d.add(0, [{ inLen: NET_HDR_BYTES + 1514 }]);
  link.queue.push(tcpFrame(100, 'full'));
  link.deliver();
  assert.equal(d.takeUsed(0)[0].data[0], 0);
});

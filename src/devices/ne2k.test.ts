import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestIrqLine } from '../bus/irq.js';
import type { NetBackend, NetPort } from './backends.js';
import { Ne2kPci } from './ne2k.js';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x57]);
const BASE = 0xc000;

class Wire implements NetBackend {
  sent: Uint8Array[] = [];
  attach(_p: NetPort, _w: () => void): void {}
  send(f: Uint8Array): void {
    this.sent.push(f.slice());
  }
  deliver(): void {}
  close(): void {}
}

function make() {
  const nic = new Ne2kPci('ne2k', MAC);
  nic.ioBase = BASE;
  const irq = new TestIrqLine();
  nic.connectIntx(irq);
  nic.writeConfig(4, 0x0001, 2); // I/O decoding on
  const wire = new Wire();
  nic.backend = wire;
  let woken = 0;
  nic.wake = () => woken++;
  const io = nic.ioPorts;
  const outb = (o: number, v: number) => io.write8!(BASE + o, v);
  const inb = (o: number) => io.read8!(BASE + o);
  return { nic, irq, wire, outb, inb, io, woken: () => woken };
}

/** What Linux's ne2k-pci probe and NS8390_init + start do (rx ring 0x4c..0x80, tx at 0x40). */
function linuxInit(h: ReturnType<typeof make>): Uint8Array {
  const { outb, inb } = h;
  outb(0x1f, inb(0x1f)); // the reset port
  assert.ok(inb(7) & 0x80, 'ISR.RST after a reset');
  outb(7, 0xff);
  for (const [v, r] of [[0x21, 0], [0x49, 0x0e], [0, 0x0a], [0, 0x0b], [0, 0x0f], [0xff, 7], [0x20, 0x0c], [0x02, 0x0d], [32, 0x0a], [0, 0x0b], [0, 8], [0, 9], [0x0a, 0]]) outb(r, v);
  const prom = Uint8Array.from({ length: 32 }, () => inb(0x10));
  outb(0x0e, 0x49);
  // NS8390_init
  outb(0, 0x21);
  outb(0x0e, 0x49);
  outb(0x0a, 0);
  outb(0x0b, 0);
  outb(0x0c, 0x20);
  outb(0x0d, 0x02);
  outb(4, 0x40);
  outb(1, 0x4c);
  outb(3, 0x4c);
  outb(2, 0x80);
  outb(7, 0xff);
  outb(0x0f, 0);
  outb(0, 0x61); // page 1
  for (let i = 0; i < 6; i++) outb(1 + i, MAC[i]);
  outb(7, 0x4d); // CURR
  outb(0, 0x21);
  // start
  outb(0, 0x22);
  outb(7, 0xff);
  outb(0x0f, 0x3f);
  outb(0x0d, 0);
  outb(0x0c, 0x04);
  return prom;
}

/** A remote read of `n` bytes at `addr`, 32 bits at a time (ne2k-pci's insl), then the tail in words and bytes. */
function remoteRead(h: ReturnType<typeof make>, addr: number, n: number): Uint8Array {
  const { outb, io } = h;
  outb(0x0a, n & 0xff);
  outb(0x0b, n >> 8);
  outb(8, addr & 0xff);
  outb(9, addr >> 8);
  outb(0, 0x0a);
  const out = new Uint8Array(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = io.read32!(BASE + 0x10);
    out.set([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24], i);
  }
  for (; i < n; i += 2) {
    const v = io.read16!(BASE + 0x10);
    out[i] = v & 0xff;
    if (i + 1 < n) out[i + 1] = v >> 8;
  }
  return out;
}

function frame(dst: Uint8Array, len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set([0x52, 0x54, 0, 0, 0, 9], 6);
  for (let i = 12; i < len; i++) f[i] = (i * 31 + seed) & 0xff;
  return f;
}

test('ne2k: the probe reads the MAC from the PROM in word mode; PCI ids are the RTL8029 and the Realtek ID answers', () => {
  const h = make();
  assert.equal(h.nic.readConfig(0, 4), 0x802910ec);
  assert.equal(h.nic.readConfig(8, 4) >>> 8, 0x020000);
  const prom = linuxInit(h);
  assert.deepEqual(prom.subarray(0, 6), MAC);
  assert.deepEqual([h.inb(0x0a), h.inb(0x0b)], [0x50, 0x43]);
  h.outb(0, 0x62); // page 1
  assert.deepEqual(Array.from({ length: 6 }, (_, i) => h.inb(1 + i)), Array.from(MAC));
  assert.equal(h.inb(7), 0x4d);
  h.outb(0, 0x22);
});

test('ne2k: transmit through remote DMA writes, then CR.TXP: the frame goes out, PTX and the interrupt follow', () => {
  const h = make();
  linuxInit(h);
  const f = frame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 101, 1);
  const n = f.length + 1; // a word-mode driver rounds up
  h.outb(0x0a, n & 0xff);
  h.outb(0x0b, n >> 8);
  h.outb(8, 0);
  h.outb(9, 0x40);
  h.outb(0, 0x12);
  for (let i = 0; i < n; i += 2) h.io.write16!(BASE + 0x10, f[i] | ((f[i + 1] ?? 0) << 8));
  assert.ok(h.inb(7) & 0x40, 'remote DMA complete');
  h.outb(7, 0x40);
  h.outb(4, 0x40);
  h.outb(5, f.length);
  h.outb(6, 0);
  assert.equal(h.irq.level, 0);
  h.outb(0, 0x26);
  assert.deepEqual(h.wire.sent, [f]);
  assert.equal(h.inb(7) & 0x02, 0x02, 'ISR.PTX');
  assert.equal(h.inb(4) & 1, 1, 'TSR.PTX');
  assert.equal(h.irq.level, 1);
  h.outb(7, 0x02);
  assert.equal(h.irq.level, 0, 'acknowledged');
  // in loopback (as during init) nothing reaches the wire
  h.outb(0x0d, 0x02);
  h.outb(0, 0x26);
  assert.equal(h.wire.sent.length, 1);
});

test('ne2k: received frames land in the ring with their header, filtered by address, and wrap at the ring end', () => {
  const h = make();
  linuxInit(h);
  const mine = frame(MAC, 200, 2);
  h.nic.receive(mine);
  h.nic.receive(frame(Uint8Array.from([0x52, 0x54, 0, 0, 0, 1]), 200, 3)); // someone else's: dropped
  h.nic.receive(frame(Uint8Array.from([0x01, 0x00, 0x5e, 0, 0, 1]), 80, 4)); // multicast without AM: dropped
  assert.ok(h.inb(7) & 0x01, 'ISR.PRX');
  assert.equal(h.irq.level, 1);
  const hdr = remoteRead(h, 0x4d00, 4);
  assert.deepEqual(Array.from(hdr), [0x01, 0x4e, 204, 0], 'status, next page, length with header');
  assert.deepEqual(remoteRead(h, 0x4d04, 200), mine);
  h.outb(0, 0x62);
  assert.equal(h.inb(7), 0x4e, 'CURR moved past the frame');
  h.outb(0, 0x22);

  // a short frame is padded to 60 bytes; a broadcast is taken (RCR.AB)
  h.nic.receive(frame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 42, 5));
  assert.deepEqual(Array.from(remoteRead(h, 0x4e00, 4)), [0x21, 0x4f, 64, 0]);

  // multicast through the MAR hash: 01:00:5e:00:00:01 has Ethernet CRC 0x7fa32d9b (zlib agrees), index 31: MAR3 bit 7
  const mcast = frame(Uint8Array.from([0x01, 0x00, 0x5e, 0, 0, 1]), 80, 6);
  h.outb(0x0c, 0x0c);
  h.outb(0, 0x62);
  h.outb(8 + 3, 0x7f); // every bit but that one
  h.outb(0, 0x22);
  h.nic.receive(mcast);
  h.outb(0, 0x62);
  assert.equal(h.inb(7), 0x4f, 'not in the filter: dropped');
  h.outb(8 + 3, 0x80);
  h.outb(0, 0x22);
  h.nic.receive(mcast);
  assert.deepEqual(Array.from(remoteRead(h, 0x4f00, 4)), [0x21, 0x50, 84, 0]);

  // the ring wraps: a frame stored from the last page continues at PSTART
  h.outb(3, 0x7e); // BNRY: the driver took everything
  h.outb(0, 0x62);
  h.outb(7, 0x7f);
  h.outb(0, 0x22);
  const big = frame(MAC, 1000, 7);
  h.nic.receive(big);
  const first = 0x8000 - 0x7f04;
  const got = new Uint8Array(1000);
  got.set(remoteRead(h, 0x7f04, first), 0);
  got.set(remoteRead(h, 0x4c00, 1000 - first), first);
  assert.deepEqual(got, big);
  h.outb(0, 0x62);
  assert.equal(h.inb(7), 0x4c + 3, 'CURR after the wrap');
  h.outb(0, 0x22);
});

test('ne2k: a full ring leaves frames in the backend until the driver moves BNRY', () => {
  const h = make();
  linuxInit(h);
  let n = 0;
  while (h.nic.canReceive() && n < 100) {
    h.nic.receive(frame(MAC, 1514, n));
    n++;
    h.outb(7, 0x01); // the driver acknowledges PRX
  }
  assert.ok(n > 5 && n < 100, `the ring filled after ${n} frames`);
  const before = h.woken();
  h.outb(3, 0x60);
  assert.ok(h.woken() > before, 'moving BNRY asks for a delivery');
  assert.ok(h.nic.canReceive());
});

test('ne2k: frames wait in the backend while PRX is unacknowledged, and the acknowledgement asks for them', () => {
  const h = make();
  linuxInit(h);
  assert.ok(h.nic.canReceive());
  h.nic.receive(frame(MAC, 200, 1));
  assert.equal(h.inb(7) & 0x01, 0x01, 'PRX set');
  assert.equal(h.nic.canReceive(), false, 'no frame is stored behind an interrupt the driver has not taken');
  const before = h.woken();
  h.outb(7, 0x01);
  assert.ok(h.woken() > before, 'acknowledging PRX asks for a delivery');
  assert.ok(h.nic.canReceive());
  // a driver that polls with the receive interrupt masked is not held back
  h.outb(0x0f, 0x00);
  h.nic.receive(frame(MAC, 200, 2));
  assert.ok(h.nic.canReceive());
});

test('ne2k: state round-trip, reset, and a seeded fuzzer that never throws or reaches outside the card', () => {
  const h = make();
  linuxInit(h);
  h.nic.receive(frame(MAC, 300, 9));
  const saved = h.nic.saveState();
  const other = make();
  other.nic.loadState(saved);
  assert.deepEqual(other.nic.saveState(), saved);
  assert.deepEqual(remoteRead(other, 0x4d04, 300), remoteRead(h, 0x4d04, 300));

  let seed = 1234;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const f = make();
  for (let i = 0; i < 200_000; i++) {
    const k = rnd(10);
    const port = BASE + rnd(0x20);
    if (k < 5) f.io.write8!(port, rnd(256));
    else if (k < 7) f.io.read8!(port);
    else if (k === 7) f.io.write32!(BASE + 0x10, rnd(0x7fffffff));
    else if (k === 8) f.io.read32!(BASE + 0x10);
    else if (f.nic.canReceive()) f.nic.receive(frame(rnd(2) ? MAC : Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 14 + rnd(1600), i));
  }
  const st = f.nic.saveState() as unknown as { mem: Uint8Array };
  assert.equal(st.mem.length, 0xc000);
  f.nic.reset();
  linuxInit(f);
  f.nic.receive(frame(MAC, 100, 1));
  assert.deepEqual(Array.from(remoteRead(f, 0x4d00, 4)), [0x01, 0x4e, 104, 0], 'works again after a reset');
});

/**
 * Linux's lib8390 receive path: ei_interrupt loops while ISR has bits (at most
 * 12 times), ei_receive takes at most 9 frames (rx_pkt_count < 10) from
 * BNRY + 1 until CURR, moves BNRY to a page behind the next frame, then acks
 * PRX. Returns the frames read.
 */
function linuxInterrupt(h: ReturnType<typeof make>): Uint8Array[] {
  const got: Uint8Array[] = [];
  for (let serviced = 0; serviced < 12 && h.inb(7) & 0x01; serviced++) {
    for (let k = 1; k < 10; k++) {
      h.outb(0, 0x62);
      const curr = h.inb(7);
      h.outb(0, 0x22);
      let page = h.inb(3) + 1;
      if (page >= 0x80) page = 0x4c;
      if (page === curr) break;
      const [, next, lo, hi] = remoteRead(h, page << 8, 4);
      const len = (lo | (hi << 8)) - 4;
      const at = (page << 8) + 4;
      const first = Math.min(len, 0x8000 - at);
      const f = new Uint8Array(len);
      f.set(remoteRead(h, at, first), 0);
      if (first < len) f.set(remoteRead(h, 0x4c00, len - first), first);
      got.push(f);
      h.outb(3, next - 1 < 0x4c ? 0x7f : next - 1);
    }
    h.outb(7, 0x01);
  }
  return got;
}

// a TCP bulk transfer's frames: full segments and the shorter tails of the sender's writes, now
// and then a small one; and a run of small frames (more than the 9 Linux takes per interrupt fit)
for (const [what, sizes] of [
  ['a bulk receive', [1514, 1514, 1514, 1514, 1514, 1018, 1514, 1514, 1514, 60, 1514, 1018, 700]],
  ['small frames', [60, 60, 90, 60, 60, 200, 60]],
] as const) {
test(`ne2k: under ${what} the ring never overwrites an unread frame and never stalls with frames waiting (Linux 8390 reader)`, () => {
  const h = make();
  linuxInit(h);
  const wire: Uint8Array[] = [];
  const count = 3000;
  // more traffic follows (as on a real wire), so frames a handler left in the ring are announced again
  for (let i = 0; i < count + 200; i++) wire.push(frame(MAC, sizes[i % sizes.length], i));
  const got: Uint8Array[] = [];
  let sent = 0;
  for (let round = 0; got.length < count; round++) {
    // slice boundaries: the backend hands over what the ring takes (the guest may not run its handler between them)
    const before = sent;
    for (let b = 0; b <= round % 3; b++) while (sent < wire.length && h.nic.canReceive()) h.nic.receive(wire[sent++]);
    // the guest services its interrupt
    const n = got.length;
    got.push(...linuxInterrupt(h));
    assert.ok(sent > before || got.length > n, `stalled after ${got.length} frames: ${wire.length - sent} wait in the backend, the ring has no room and no interrupt is pending`);
  }
  for (let i = 0; i < count; i++) assert.deepEqual(got[i], wire[i], `frame ${i} read back intact and in order`);
});
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayDmaView } from '../../bus/dma.js';
import { TestIrqLine } from '../../bus/irq.js';
import type { NetBackend, NetPort } from '../backends.js';
import { E1000 } from './e1000.js';
import { segment, sum16, fold } from '../netoffload.js';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const RAM = 1 << 20;
const RX_RING = 0x10000;
const TX_RING = 0x11000;
const RX_BUFS = 0x20000;
const TX_BUF = 0x40000;
const N = 8;

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
  const mem = new Uint8Array(RAM);
  const nic = new E1000('e1000', { mac: MAC, dma: new ArrayDmaView(mem) });
  const irq = new TestIrqLine();
  nic.connectIntx(irq);
  const wire = new Wire();
  nic.backend = wire;
  const w = (off: number, v: number) => nic.mmio.write32!(off, v);
  const r = (off: number) => nic.mmio.read32!(off);
  return { mem, nic, irq, wire, w, r };
}

/** What Linux's e1000_read_eeprom does on an 82540: Microwire bit-banging through EECD. */
function eepromRead(w: (o: number, v: number) => void, r: (o: number) => number, addr: number): number {
  const SK = 1, CS = 2, DI = 4, DO = 8, REQ = 0x40;
  w(0x10, REQ);
  assert.ok(r(0x10) & 0x80, 'EECD grants the EEPROM on request');
  w(0x10, REQ | CS);
  const bits = (0b110 << 6) | addr;
  for (let i = 8; i >= 0; i--) {
    const di = (bits >> i) & 1 ? DI : 0;
    w(0x10, REQ | CS | di);
    w(0x10, REQ | CS | di | SK);
    w(0x10, REQ | CS | di);
  }
  let v = 0;
  for (let i = 0; i < 16; i++) {
    w(0x10, REQ | CS | SK);
    v = (v << 1) | (r(0x10) & DO ? 1 : 0);
    w(0x10, REQ | CS);
  }
  w(0x10, 0);
  return v;
}

function setupRings(t: ReturnType<typeof make>) {
  const { mem, w } = t;
  const dv = new DataView(mem.buffer);
  for (let i = 0; i < N; i++) dv.setUint32(RX_RING + i * 16, RX_BUFS + i * 2048, true);
  w(0x2800, RX_RING);
  w(0x2808, N * 16);
  w(0x2810, 0);
  w(0x2818, N - 1);
  w(0x3800, TX_RING);
  w(0x3808, N * 16);
  w(0x3810, 0);
  w(0x3818, 0);
  w(0xd0, 0x9f); // IMS: TXDW, TXQE, LSC, RXDMT0, RXO, RXT0
  w(0x100, (1 << 1) | (1 << 15) | (1 << 26)); // RCTL: EN, BAM, SECRC, 2 KiB buffers
  w(0x400, 1 << 1); // TCTL.EN
  return dv;
}

test('e1000: PCI identity, EEPROM over Microwire and EERD, PHY over MDIC', () => {
  const t = make();
  assert.equal(t.nic.readConfig(0, 4), 0x100e8086);
  assert.equal(t.nic.readConfig(0x08, 4) >>> 8, 0x020000);
  let sum = 0;
  const words: number[] = [];
  for (let a = 0; a < 64; a++) {
    const v = eepromRead(t.w, t.r, a);
    words.push(v);
    sum = (sum + v) & 0xffff;
  }
  assert.equal(sum, 0xbaba, 'EEPROM checksum as e1000_validate_eeprom_checksum wants it');
  assert.deepEqual(words.slice(0, 3), [0x5452, 0x1200, 0x5634]);
  t.w(0x14, (1 << 8) | 1);
  assert.equal(t.r(0x14), (0x1200 << 16) | (1 << 8) | 0x10);
  // PHY id registers 2 and 3 at PHY address 1: Marvell 88E1011
  t.w(0x20, (2 << 26) | (1 << 21) | (2 << 16));
  assert.equal(t.r(0x20) & 0x1000ffff, 0x10000141);
  t.w(0x20, (2 << 26) | (1 << 21) | (3 << 16));
  assert.equal(t.r(0x20) & 0xffff, 0x0c20);
  assert.equal(t.r(0x8) & 3, 3, 'STATUS: full duplex, link up');
  // IOADDR/IODATA reach the same registers
  t.nic.ioBase = 0xc000;
  t.nic.ioPorts.write32!(0xc000, 0x8);
  assert.equal(t.nic.ioPorts.read32!(0xc004), t.r(0x8));
});

test('e1000: a legacy TX descriptor sends the frame and reports DD with an interrupt', () => {
  const t = make();
  const dv = setupRings(t);
  const frame = new Uint8Array(60).map((_, i) => i);
  t.mem.set(frame, TX_BUF);
  dv.setUint32(TX_RING, TX_BUF, true);
  dv.setUint16(TX_RING + 8, 60, true);
  t.mem[TX_RING + 11] = 0x01 | 0x02 | 0x08; // EOP, IFCS, RS
  t.w(0x3818, 1);
  assert.equal(t.wire.sent.length, 1);
  assert.deepEqual(t.wire.sent[0], frame);
  assert.equal(t.mem[TX_RING + 12] & 1, 1, 'DD written back');
  assert.equal(t.r(0x3810), 1, 'TDH advanced');
  assert.equal(t.irq.level, 1);
  const icr = t.r(0xc0);
  assert.ok(icr & 1, 'ICR.TXDW');
  assert.equal(t.irq.level, 0, 'reading ICR clears it and drops INTx');
  assert.equal(t.r(0xc0), 0);
});

test('e1000: RX puts an accepted frame in the next buffer; other unicasts are filtered', () => {
  const t = make();
  setupRings(t);
  assert.ok(t.nic.canReceive());
  const f = new Uint8Array(100);
  f.set(MAC, 0);
  f[12] = 0x08;
  f[99] = 0x77;
  t.nic.receive(f);
  assert.equal(t.mem[RX_RING + 12] & 3, 3, 'DD and EOP');
  assert.equal(t.mem[RX_RING + 8] | (t.mem[RX_RING + 9] << 8), 100);
  assert.equal(t.mem[RX_BUFS + 99], 0x77);
  assert.equal(t.r(0x2810), 1);
  assert.ok(t.r(0xc0) & 0x80, 'RXT0');
  const other = f.slice();
  other[5] = 0x99;
  t.nic.receive(other);
  assert.equal(t.r(0x2810), 1, 'a frame for another station is not taken');
  const bcast = f.slice();
  bcast.fill(0xff, 0, 6);
  t.nic.receive(bcast);
  assert.equal(t.r(0x2810), 2, 'broadcast accepted with BAM');
  // ring full: RDT stays at 7, so six more fill it and the next overruns
  for (let i = 0; i < 6; i++) t.nic.receive(f);
  assert.equal(t.nic.canReceive(), false);
  t.r(0xc0);
  t.nic.receive(f);
  assert.ok(t.r(0xc0) & 0x40, 'RXO when no buffer is free');
});

test('e1000: TSO cuts a TCP burst into MSS segments with correct checksums', () => {
  // a 14+20+20 header and 3000 bytes of payload, mss 1000
  const hdr = 54;
  const p = new Uint8Array(hdr + 3000);
  p[12] = 0x08;
  p[14] = 0x45;
  p[23] = 6;
  p.set([10, 0, 2, 15, 10, 0, 2, 2], 26);
  p[46] = 0x50;
  p[47] = 0x19; // ACK, PSH, FIN
  for (let i = hdr; i < p.length; i++) p[i] = i & 0xff;
  // pseudo-header sum without length, as Linux leaves it
  const ps = fold(sum16(p, 26, 34, 6));
  p[50] = ps >>> 8;
  p[51] = ps & 0xff;
  const segs = segment(p, p.length, { ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, tucmd: 7, mss: 1000, hdrlen: hdr, paylen: 3000 });
  assert.equal(segs.length, 3);
  for (const [i, s] of segs.entries()) {
    assert.equal(s.length, hdr + 1000);
    assert.equal((s[16] << 8) | s[17], s.length - 14, 'IP total length');
    assert.equal(fold(sum16(s, 14, 34)), 0xffff, 'IP header checksum verifies');
    const tcpLen = s.length - 34;
    assert.equal(fold(sum16(s, 34, s.length, sum16(s, 26, 34, 6 + tcpLen))), 0xffff, 'TCP checksum verifies');
    assert.equal(s[47] & 0x09, i === 2 ? 0x09 : 0, 'FIN/PSH only on the last');
    assert.equal(((s[38] << 24) | (s[39] << 16) | (s[40] << 8) | s[41]) >>> 0, i * 1000);
  }
});

test('e1000: RX checksum offload (RXCSUM) reports IPCS/TCPCS, with TCPE for a bad TCP checksum; IXSM without it', () => {
  const t = make();
  setupRings(t);
  // a TCP/IPv4 frame to our MAC with correct checksums
  const f = new Uint8Array(14 + 40 + 200);
  f.set(MAC, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[17] = 240;
  f[22] = 64;
  f[23] = 6;
  f.set([10, 0, 2, 2, 10, 0, 2, 15], 26);
  const ipc = ~fold(sum16(f, 14, 34)) & 0xffff;
  f[24] = ipc >>> 8;
  f[25] = ipc & 0xff;
  f[46] = 0x50;
  for (let i = 54; i < f.length; i++) f[i] = i;
  const tc = ~fold(sum16(f, 34, f.length, sum16(f, 26, 34, 6 + 220))) & 0xffff;
  f[50] = tc >>> 8;
  f[51] = tc & 0xff;
  t.nic.receive(f);
  assert.equal(t.mem[RX_RING + 12] & 0x64, 0x04, 'RXCSUM off: IXSM, no checksum bits');
  t.w(0x5000, 0x300); // IPOFL | TUOFL, as Linux's e1000_configure_rx sets it
  t.nic.receive(f);
  assert.equal(t.mem[RX_RING + 16 + 12] & 0x64, 0x60, 'IPCS and TCPCS, not IXSM');
  assert.equal(t.mem[RX_RING + 16 + 13], 0, 'no errors');
  const bad = f.slice();
  bad[100] ^= 0xff;
  t.nic.receive(bad);
  assert.equal(t.mem[RX_RING + 32 + 13], 0x20, 'TCPE');
});

test('e1000: state round-trip', () => {
  const a = make();
  const dv = setupRings(a);
  a.mem.set(new Uint8Array(60).fill(1), TX_BUF);
  dv.setUint32(TX_RING, TX_BUF, true);
  dv.setUint16(TX_RING + 8, 30, true);
  a.mem[TX_RING + 11] = 0x08; // first half of a packet, no EOP yet
  a.w(0x3818, 1);
  const s = a.nic.saveState();
  const b = make();
  b.mem.set(a.mem);
  b.nic.loadState(s);
  for (const t of [a, b]) {
    dv.setUint32(TX_RING + 16, TX_BUF + 30, true);
    t.mem.set(a.mem.subarray(TX_RING, TX_RING + 16), TX_RING);
    const d = new DataView(t.mem.buffer);
    d.setUint32(TX_RING + 16, TX_BUF + 30, true);
    d.setUint16(TX_RING + 24, 30, true);
    t.mem[TX_RING + 27] = 0x09;
    t.w(0x3818, 2);
  }
  assert.equal(b.wire.sent.length, 1);
  assert.deepEqual(b.wire.sent, a.wire.sent);
  assert.deepEqual(b.nic.saveState(), a.nic.saveState());
  assert.throws(() => b.nic.loadState({ ...s, regs: new Uint32Array(3) } as typeof s));
});

test('e1000: seeded fuzz of guest-controlled registers and descriptors stays inside RAM and never throws', () => {
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const mem = new Uint8Array(RAM);
  const touched: number[] = [];
  const dma = {
    read(addr: number, dst: Uint8Array) {
      touched.push(addr, dst.length);
      if (!(addr >= 0 && addr + dst.length <= RAM)) return false;
      dst.set(mem.subarray(addr, addr + dst.length));
      return true;
    },
    write(addr: number, src: Uint8Array) {
      touched.push(addr, src.length);
      if (!(addr >= 0 && addr + src.length <= RAM)) return false;
      mem.set(src, addr);
      return true;
    },
  };
  const nic = new E1000('e1000', { mac: MAC, dma });
  nic.backend = new Wire();
  const regs = [0x0, 0x10, 0x14, 0x20, 0xc0, 0xc8, 0xd0, 0xd8, 0x100, 0x400, 0x2800, 0x2804, 0x2808, 0x2810, 0x2818, 0x3800, 0x3804, 0x3808, 0x3810, 0x3818];
  for (let i = 0; i < 4000; i++) {
    const k = rnd() % 10;
    if (k < 6) {
      const off = regs[rnd() % regs.length];
      const v = rnd() % 4 === 0 ? rnd() % 64 : rnd();
      nic.mmio.write32!(off, off === 0 ? v & ~(1 << 26) : v);
    } else if (k < 8) {
      // scribble on descriptors and rings: huge lengths, addresses beyond RAM
      const a = (rnd() % (RAM - 4)) & ~3;
      new DataView(mem.buffer).setUint32(a, rnd(), true);
    } else if (k < 9) {
      nic.mmio.read32!(regs[rnd() % regs.length]);
    } else {
      const f = new Uint8Array(14 + (rnd() % 2000));
      f.fill(0xff, 0, 6);
      if (nic.canReceive()) nic.receive(f);
    }
  }
  let outside = 0;
  for (let i = 0; i < touched.length; i += 2) if (!(touched[i] + touched[i + 1] <= RAM)) outside++;
  assert.ok(touched.length > 0, 'the fuzzer reached the DMA paths');
  assert.ok(outside > 0, 'the fuzzer made the device aim outside RAM (refused by the DMA view)');
  // after a device reset the NIC works again
  nic.mmio.write32!(0, 1 << 26);
  const t = { mem, nic, irq: new TestIrqLine(), wire: new Wire(), w: (o: number, v: number) => nic.mmio.write32!(o, v), r: (o: number) => nic.mmio.read32!(o) };
  nic.backend = t.wire;
  mem.fill(0, RX_RING, RX_RING + 0x2000);
  const dv = setupRings(t);
  dv.setUint32(TX_RING, TX_BUF, true);
  dv.setUint32(TX_RING + 4, 0, true);
  dv.setUint16(TX_RING + 8, 60, true);
  mem[TX_RING + 11] = 0x09;
  t.w(0x3818, 1);
  assert.equal(t.wire.sent.length, 1);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { atapiReadAll, BM_BASE, MemBlock, pattern, readData, S, sendPacket, setup, type Harness } from '../../../test/devices/ata-harness.js';

const CD_SECTORS = 40;
const DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
const IO = 0x02, COD = 0x01;

function cdSetup(withMedium = true) {
  const iso = new MemBlock(CD_SECTORS * 2048, true, pattern);
  const h = setup([null, null, { kind: 'cdrom', backend: withMedium ? iso : null }]);
  return { h, iso };
}

/** Run a packet with PIO and collect its reply. */
function pkt(h: Harness, cdb: number[], limit = 0xfffe) {
  sendPacket(h, S, 0, cdb, limit);
  return atapiReadAll(h, S);
}

function sense(h: Harness): [number, number, number] {
  const r = pkt(h, [0x03, 0, 0, 0, 18, 0]);
  assert.equal(r.data.length, 18);
  assert.equal(r.data[0], 0xf0);
  assert.equal(r.data[7], 10);
  return [r.data[2] & 0x0f, r.data[12], r.data[13]];
}

test('PACKET: DRQ with CoD for the command, then data with IO, then completion with IO|CoD', () => {
  const { h } = cdSetup();
  h.outb(S + 6, 0xa0);
  h.outb(S + 4, 0x00);
  h.outb(S + 5, 0x08);
  h.outb(S + 7, 0xa0);
  h.step();
  assert.equal(h.inb(S + 7), DRDY | DSC | DRQ);
  assert.equal(h.inb(S + 2) & 3, COD);
  assert.equal(h.irq15.raises, 0); // no interrupt before the packet
  const cdb = new Uint8Array(12);
  cdb.set([0x12, 0, 0, 0, 36, 0]);
  for (let i = 0; i < 12; i += 2) h.outw(S, cdb[i] | (cdb[i + 1] << 8));
  h.step();
  assert.equal(h.irq15.raises, 1);
  assert.equal(h.inb(S + 7), DRDY | DSC | DRQ);
  assert.equal(h.inb(S + 2) & 3, IO);
  assert.equal(h.inb(S + 4) | (h.inb(S + 5) << 8), 36);
  const inq = readData(h, S, 36);
  h.step();
  assert.equal(h.irq15.raises, 2);
  assert.equal(h.inb(S + 7), DRDY | DSC);
  assert.equal(h.inb(S + 2) & 3, IO | COD);
  assert.equal(inq[0], 0x05); // CD/DVD device
  assert.equal(inq[1], 0x80); // removable
  assert.equal(inq[4], 31);
  assert.equal(String.fromCharCode(...inq.subarray(8, 16)), 'tsvm    ');
  assert.equal(String.fromCharCode(...inq.subarray(16, 32)), 'DVD-ROM         ');
});

test('INQUIRY honours the allocation length; EVPD is an invalid field', () => {
  const { h } = cdSetup();
  assert.equal(pkt(h, [0x12, 0, 0, 0, 8, 0]).data.length, 8);
  const r = pkt(h, [0x12, 1, 0, 0, 36, 0]);
  assert.equal(r.status, DRDY | DSC | ERR);
  assert.equal(r.error >> 4, 5);
  assert.deepEqual(sense(h), [5, 0x24, 0]);
});

test('READ CAPACITY: last LBA and 2048-byte blocks', () => {
  const { h } = cdSetup();
  const r = pkt(h, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...r.data], [0, 0, 0, CD_SECTORS - 1, 0, 0, 8, 0]);
});

test('READ(10) and READ(12) through PIO in chunks of the byte count limit', () => {
  const { h, iso } = cdSetup();
  let r = pkt(h, [0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0], 2048);
  assert.deepEqual(r.chunks, [2048, 2048]);
  assert.deepEqual(r.data, iso.data.subarray(3 * 2048, 5 * 2048));
  assert.equal(r.status, DRDY | DSC);
  r = pkt(h, [0xa8, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0], 1000);
  assert.deepEqual(r.chunks, [1000, 1000, 48]);
  assert.deepEqual(r.data, iso.data.subarray(7 * 2048, 8 * 2048));
  r = pkt(h, [0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // zero length: no data phase
  assert.equal(r.data.length, 0);
  assert.equal(r.status, DRDY | DSC);
});

test('READ past the end: ILLEGAL REQUEST, LBA OUT OF RANGE', () => {
  const { h } = cdSetup();
  const r = pkt(h, [0x28, 0, 0, 0, 0, CD_SECTORS - 1, 0, 0, 2, 0]);
  assert.equal(r.status & ERR, ERR);
  assert.equal(h.inb(S + 2) & 3, IO | COD);
  assert.deepEqual(sense(h), [5, 0x21, 0]);
  assert.deepEqual(sense(h), [0, 0, 0]); // REQUEST SENSE clears it
});

test('unknown opcode: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE', () => {
  const { h } = cdSetup();
  pkt(h, [0xee]);
  assert.deepEqual(sense(h), [5, 0x20, 0]);
});

test('READ TOC format 0 in LBA and MSF, format 1 (session info)', () => {
  const { h } = cdSetup();
  let r = pkt(h, [0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x20, 0]);
  assert.deepEqual([...r.data], [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x16, 0xaa, 0, 0, 0, 0, CD_SECTORS]);
  r = pkt(h, [0x43, 2, 0, 0, 0, 0, 0, 0x03, 0x20, 0]);
  const lead = CD_SECTORS + 150;
  assert.deepEqual([...r.data.subarray(8, 12)], [0, 0, 2, 0]); // track 1 at 00:02:00
  assert.deepEqual([...r.data.subarray(16, 20)], [0, Math.floor(lead / 4500), Math.floor(lead / 75) % 60, lead % 75]);
  r = pkt(h, [0x43, 0, 0, 0, 0, 0, 0xaa, 0x03, 0x20, 0]); // from the lead-out only
  assert.equal(r.data.length, 12);
  r = pkt(h, [0x43, 0, 1, 0, 0, 0, 0, 0, 12, 0]);
  assert.deepEqual([...r.data], [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
  r = pkt(h, [0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0]); // allocation length cuts the reply
  assert.deepEqual([...r.data], [0, 18, 1, 1]);
  r = pkt(h, [0x43, 0, 2, 0, 0, 0, 0, 0, 0xff, 0]); // full TOC: A0, A1, A2 (lead-out), track 1
  assert.equal(r.data.length, 4 + 4 * 11);
  assert.deepEqual([...r.data.subarray(0, 4)], [0, 46, 1, 1]);
  assert.deepEqual([3, 14, 25, 36].map((o) => r.data[4 + o]), [0xa0, 0xa1, 0xa2, 1]);
  assert.deepEqual([...r.data.subarray(4 + 22 + 8, 4 + 22 + 11)], [Math.floor(lead / 4500), Math.floor(lead / 75) % 60, lead % 75]);
  assert.deepEqual([...r.data.subarray(4 + 33 + 8, 4 + 33 + 11)], [0, 2, 0]);
  pkt(h, [0x43, 0, 0, 0, 0, 0, 5, 0, 0x20, 0]);
  assert.deepEqual(sense(h), [5, 0x24, 0]);
});

test('no medium: NOT READY, MEDIUM NOT PRESENT; inserting one gives UNIT ATTENTION and a media event', () => {
  const { h } = cdSetup(false);
  let r = pkt(h, [0x00, 0, 0, 0, 0, 0]);
  assert.equal(r.status & ERR, ERR);
  assert.equal(r.error >> 4, 2);
  assert.deepEqual(sense(h), [2, 0x3a, 1]);
  const iso = new MemBlock(10 * 2048, true, pattern);
  assert.equal(h.ide.changeMedium(2, iso), true);
  assert.equal(h.ide.changeMedium(0, iso), false); // not a CD drive
  r = pkt(h, [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]); // GET EVENT STATUS runs despite the attention
  assert.deepEqual([...r.data], [0, 4, 4, 0x10, 2, 2, 0, 0]); // 4 bytes of event data: new media, media present
  r = pkt(h, [0x00, 0, 0, 0, 0, 0]);
  assert.equal(r.error >> 4, 6);
  assert.deepEqual(sense(h), [6, 0x28, 0]);
  r = pkt(h, [0x00, 0, 0, 0, 0, 0]);
  assert.equal(r.status, DRDY | DSC);
  r = pkt(h, [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
  assert.equal(r.data[4], 0); // the event was consumed
});

test('PREVENT ALLOW MEDIUM REMOVAL blocks START STOP UNIT eject; eject opens the tray', () => {
  const { h } = cdSetup();
  pkt(h, [0x1e, 0, 0, 0, 1, 0]);
  let r = pkt(h, [0x1b, 0, 0, 0, 0x02, 0]);
  assert.equal(r.status & ERR, ERR);
  assert.deepEqual(sense(h), [5, 0x53, 2]);
  r = pkt(h, [0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28, 0]);
  assert.equal(r.data[8 + 6] & 0x02, 0x02); // locked shows in page 2Ah
  pkt(h, [0x1e, 0, 0, 0, 0, 0]);
  r = pkt(h, [0x1b, 0, 0, 0, 0x02, 0]);
  assert.equal(r.status, DRDY | DSC);
  r = pkt(h, [0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]);
  assert.equal(r.data[1] & 0x10, 0x10); // door open
  pkt(h, [0x00, 0, 0, 0, 0, 0]);
  assert.deepEqual(sense(h), [2, 0x3a, 2]);
  pkt(h, [0x1b, 0, 0, 0, 0x03, 0]); // load
  pkt(h, [0x00, 0, 0, 0, 0, 0]);
  assert.deepEqual(sense(h), [6, 0x28, 0]);
});

test('MODE SENSE(10) page 2Ah, GET CONFIGURATION, READ DISC INFORMATION, SET CD SPEED', () => {
  const { h } = cdSetup();
  let r = pkt(h, [0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28, 0]);
  assert.equal(r.data.length, 28);
  assert.equal((r.data[0] << 8) | r.data[1], 26);
  assert.equal(r.data[8], 0x2a);
  assert.equal(r.data[9], 0x12);
  assert.equal(r.data[8 + 6] & 0x29, 0x29); // lock, eject, tray
  pkt(h, [0x5a, 0, 0xea, 0, 0, 0, 0, 0, 28, 0]); // saved values
  assert.deepEqual(sense(h), [5, 0x39, 0]);
  r = pkt(h, [0x46, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]);
  assert.equal((r.data[6] << 8) | r.data[7], 0x0008); // current profile CD-ROM
  assert.equal((r.data[0] << 24) | (r.data[1] << 16) | (r.data[2] << 8) | r.data[3], r.data.length - 4);
  r = pkt(h, [0x46, 2, 0, 1, 0, 0, 0, 0, 0xff, 0]); // only the Core feature
  assert.equal(r.data.length, 16);
  assert.equal((r.data[8] << 8) | r.data[9], 1);
  r = pkt(h, [0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]);
  assert.equal(r.data.length, 34);
  assert.equal(r.data[2], 0x0e);
  r = pkt(h, [0xbb, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(r.status, DRDY | DSC);
});

test('READ(10) with DMA through the bus master', () => {
  const { h, iso } = cdSetup();
  const dv = new DataView(h.ram.buffer);
  dv.setUint32(0x1000, 0x10000, true);
  dv.setUint16(0x1004, 3 * 2048, true);
  dv.setUint16(0x1006, 0x8000, true);
  const bm2 = BM_BASE + 8;
  h.outl(bm2 + 4, 0x1000);
  h.outb(bm2, 0x08);
  sendPacket(h, S, 0, [0x28, 0, 0, 0, 0, 10, 0, 0, 3, 0], 0xfffe, true);
  assert.equal(h.inb(S + 7) & DRQ, DRQ); // waiting for the bus master
  h.outb(bm2, 0x09);
  h.step();
  assert.equal(h.inb(bm2 + 2) & 7, 0x04);
  assert.equal(h.inb(S + 7), DRDY | DSC);
  assert.equal(h.inb(S + 2) & 3, IO | COD);
  assert.deepEqual(h.ram.subarray(0x10000, 0x10000 + 3 * 2048), iso.data.subarray(10 * 2048, 13 * 2048));
  // A small reply (INQUIRY) by DMA too.
  h.outb(bm2, 0x08);
  h.outb(bm2 + 2, 0x04);
  sendPacket(h, S, 0, [0x12, 0, 0, 0, 36, 0], 0xfffe, true);
  h.outb(bm2, 0x09);
  h.step();
  assert.equal(h.ram[0x10000], 0x05);
  assert.equal(h.inb(bm2 + 2) & 5, 0x05); // table larger than the reply: Active stays set
});

test('DEVICE RESET on the packet device: signature, no interrupt', () => {
  const { h } = cdSetup();
  h.outb(S + 6, 0xa0);
  h.outb(S + 7, 0xa0); // PACKET, then abandon it
  h.step();
  const raises = h.irq15.raises;
  h.outb(S + 7, 0x08);
  h.step();
  assert.equal(h.irq15.raises, raises);
  assert.equal(h.inb(S + 7), 0);
  assert.deepEqual([h.inb(S + 4), h.inb(S + 5)], [0x14, 0xeb]);
});

test('state round trip: ATAPI chunk half read on one channel, DMA waiting for the start bit on the other', () => {
  const make = () => {
    const iso = new MemBlock(CD_SECTORS * 2048, true, pattern);
    const hd = new MemBlock(64 * 1024, false, pattern);
    return { h: setup([{ kind: 'disk', backend: hd }, null, { kind: 'cdrom', backend: iso }]), iso, hd };
  };
  const a = make();
  sendPacket(a.h, S, 0, [0x28, 0, 0, 0, 0, 2, 0, 0, 2, 0], 2048);
  const firstHalf = readData(a.h, S, 1024);
  const dv = new DataView(a.h.ram.buffer);
  dv.setUint32(0x1000, 0x8000, true);
  dv.setUint16(0x1004, 1024, true);
  dv.setUint16(0x1006, 0x8000, true);
  a.h.outl(BM_BASE + 4, 0x1000);
  a.h.outb(BM_BASE, 0x08);
  a.h.outb(0x1f6, 0xe0);
  a.h.outb(0x1f2, 2);
  a.h.outb(0x1f3, 9);
  a.h.outb(0x1f4, 0);
  a.h.outb(0x1f5, 0);
  a.h.outb(0x1f7, 0xc8);
  a.h.step();
  const saved = a.h.ide.saveState();
  const b = make();
  b.h.clock.advanceTo(a.h.clock.nowNs);
  b.h.ram.set(a.h.ram);
  b.h.ide.loadState(saved);
  assert.deepEqual(b.h.ide.saveState(), saved);
  const run = (x: ReturnType<typeof make>) => {
    const endOfChunk = readData(x.h, S, 1024);
    const rest = atapiReadAll(x.h, S);
    x.h.outb(BM_BASE, 0x09);
    x.h.step();
    return { endOfChunk, rest: rest.data, chunks: rest.chunks, bm: x.h.inb(BM_BASE + 2), st: x.h.inb(0x1f7), mem: x.h.ram.slice(0x8000, 0x8400) };
  };
  const ra = run(a), rb = run(b);
  assert.deepEqual(rb, ra);
  assert.deepEqual(ra.chunks, [2048]);
  assert.deepEqual(firstHalf, a.iso.data.subarray(2 * 2048, 2 * 2048 + 1024));
  assert.deepEqual(ra.endOfChunk, a.iso.data.subarray(2 * 2048 + 1024, 3 * 2048));
  assert.deepEqual(ra.rest, a.iso.data.subarray(3 * 2048, 4 * 2048));
  assert.deepEqual(ra.mem, a.hd.data.subarray(9 * 512, 11 * 512));
  assert.equal(ra.bm & 7, 0x04);
  assert.deepEqual(b.h.ide.saveState(), a.h.ide.saveState());
});

test('32-bit data reads never run into the next chunk; the 2-byte tail goes by a 16-bit read', () => {
  const { h, iso } = cdSetup();
  sendPacket(h, S, 0, [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], 1002);
  const got: number[] = [];
  for (;;) {
    const st = h.inb(S + 7);
    if (!(st & DRQ)) break;
    const n = h.inb(S + 4) | (h.inb(S + 5) << 8);
    for (let i = 0; i + 4 <= n; i += 4) {
      const v = h.inl(S);
      got.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
    }
    if (n % 4) {
      const w = h.inw(S);
      got.push(w & 0xff, w >>> 8);
    }
  }
  assert.deepEqual(new Uint8Array(got), iso.data.subarray(2048, 4096));
});

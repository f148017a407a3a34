import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemBlock, pattern } from '../../../test/devices/ata-harness.js';
import { fuzzDevice, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { VirtioBlk, BlkF, BlkS, BlkT } from './blk.js';

const DISK = 64 * 1024;

function hdr(type: number, sector: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(8, sector, true);
  return b;
}

function setup(readOnly = false): { d: VirtioDriver; disk: MemBlock } {
  const disk = new MemBlock(DISK, readOnly, pattern);
  const d = new VirtioDriver(new VirtioBlk('vda', disk, 'tsvm-disk-1'));
  d.init({ eventIdx: false });
  return { d, disk };
}

test('virtio-blk config: capacity in sectors, block size, features', () => {
  const { d } = setup();
  assert.equal(d.deviceConfig(0, 4), DISK / 512);
  assert.equal(d.deviceConfig(20, 4), 512);
  assert.ok(d.deviceFeatures()[0] & (1 << BlkF.FLUSH));
  assert.equal(d.deviceFeatures()[0] & (1 << BlkF.RO), 0);
  assert.ok(setup(true).d.deviceFeatures()[0] & (1 << BlkF.RO));
});

test('virtio-blk reads and writes sectors across several buffers, direct and indirect', () => {
  const { d, disk } = setup();
  const r = d.request(0, [{ out: hdr(BlkT.IN, 3) }, { inLen: 700 }, { inLen: 324 }, { inLen: 1 }]);
  assert.ok(r);
  assert.equal(r.len, 1025);
  assert.deepEqual(r.data.subarray(0, 1024), disk.data.subarray(3 * 512, 5 * 512));
  assert.equal(r.data[1024], BlkS.OK);
  const data = new Uint8Array(1536).map((_, i) => (i * 31) & 0xff);
  const w = d.request(0, [{ out: hdr(BlkT.OUT, 10) }, { out: data.subarray(0, 100) }, { out: data.subarray(100) }, { inLen: 1 }], true);
  assert.equal(w?.data[0], BlkS.OK);
  assert.deepEqual(disk.data.subarray(10 * 512, 13 * 512), data);
  const f = d.request(0, [{ out: hdr(BlkT.FLUSH, 0) }, { inLen: 1 }]);
  assert.equal(f?.data[0], BlkS.OK);
  assert.equal(disk.flushes, 1);
  const id = d.request(0, [{ out: hdr(BlkT.GET_ID, 0) }, { inLen: 20 }, { inLen: 1 }]);
  assert.equal(Buffer.from(id!.data.subarray(0, 11)).toString(), 'tsvm-disk-1');
});

test('virtio-blk: out of range, partial sectors, writes to a read-only disk and unknown types are errors the driver sees', () => {
  const { d } = setup();
  assert.equal(d.request(0, [{ out: hdr(BlkT.IN, DISK / 512 - 1) }, { inLen: 1024 }, { inLen: 1 }])?.data[1024], BlkS.IOERR);
  assert.equal(d.request(0, [{ out: hdr(BlkT.IN, 0xffffffff) }, { inLen: 512 }, { inLen: 1 }])?.data[512], BlkS.IOERR);
  assert.equal(d.request(0, [{ out: hdr(BlkT.IN, 0) }, { inLen: 100 }, { inLen: 1 }])?.data[100], BlkS.IOERR);
  assert.equal(d.request(0, [{ out: hdr(99, 0) }, { inLen: 1 }])?.data[0], BlkS.UNSUPP);
  const ro = setup(true);
  assert.equal(ro.d.request(0, [{ out: hdr(BlkT.OUT, 0) }, { out: new Uint8Array(512) }, { inLen: 1 }])?.data[0], BlkS.IOERR);
  assert.equal(ro.disk.writes, 0);
});

test('virtio-blk: a request with no header is a guest error (DEVICE_NEEDS_RESET)', () => {
  const { d } = setup();
  d.request(0, [{ out: new Uint8Array(4) }, { inLen: 1 }]);
  assert.ok(d.status & 0x40);
});

test('fuzz: virtio-blk survives seeded bad rings; the disk outside written sectors is untouched', () => {
  for (let seed = 1; seed <= 15; seed++) {
    const disk = new MemBlock(DISK, false, pattern);
    const d = new VirtioDriver(new VirtioBlk('vda', disk));
    fuzzDevice(d, seed, 300, (drv, check) => {
      const u = drv.request(0, [{ out: hdr(BlkT.IN, seed) }, { inLen: 512 }, { inLen: 1 }], seed % 2 === 1);
      if (check) assert.deepEqual(u?.data.subarray(0, 512), disk.data.subarray(seed * 512, seed * 512 + 512));
    });
  }
});

/** A MemBlock that also takes vectors, counting calls of each kind. */
class VecBlock extends MemBlock {
  calls = { read: 0, write: 0, readv: 0, writev: 0 };
  override read(offset: number, dst: Uint8Array): void {
    this.calls.read++;
    super.read(offset, dst);
  }
  override write(offset: number, src: Uint8Array): void {
    this.calls.write++;
    super.write(offset, src);
  }
  readv(offset: number, dsts: readonly Uint8Array[]): void {
    this.calls.readv++;
    for (const d of dsts) {
      super.read(offset, d);
      offset += d.length;
    }
  }
  writev(offset: number, srcs: readonly Uint8Array[]): void {
    this.calls.writev++;
    for (const s of srcs) {
      super.write(offset, s);
      offset += s.length;
    }
  }
}

test('virtio-blk: a request is one vectored backend call, with the same data as one call per buffer', () => {
  const results: Uint8Array[] = [];
  for (const perPiece of [false, true]) {
    const disk = new VecBlock(DISK, false, pattern);
    const d = new VirtioDriver(new VirtioBlk('vda', disk, 'id', { perPiece }));
    d.init({ eventIdx: false });
    // 8 buffers of odd sizes adding up to 8 sectors
    const sizes = [512, 1000, 24, 1536, 100, 300, 112, 0];
    sizes[7] = 8 * 512 - sizes.reduce((a, b) => a + b, 0);
    assert.ok(sizes[7] > 0);
    const r = d.request(0, [{ out: hdr(BlkT.IN, 5) }, ...sizes.map((n) => ({ inLen: n })), { inLen: 1 }]);
    assert.equal(r?.data[8 * 512], BlkS.OK);
    assert.deepEqual(r!.data.subarray(0, 8 * 512), disk.data.subarray(5 * 512, 13 * 512));
    const data = new Uint8Array(8 * 512).map((_, i) => (i * 29 + 3) & 0xff);
    let k = 0;
    const segs = sizes.map((n) => ({ out: data.subarray(k, (k += n)) }));
    assert.equal(d.request(0, [{ out: hdr(BlkT.OUT, 20) }, ...segs, { inLen: 1 }], true)?.data[0], BlkS.OK);
    assert.deepEqual(disk.data.subarray(20 * 512, 28 * 512), data);
    if (perPiece) assert.deepEqual(disk.calls, { read: 8, write: 8, readv: 0, writev: 0 });
    else assert.deepEqual(disk.calls, { read: 0, write: 0, readv: 1, writev: 1 });
    results.push(disk.data);
  }
  assert.deepEqual(results[0], results[1]);
});

test('virtio-blk: a backend without readv/writev gets one call per buffer; zero-length requests succeed; partial sectors are refused before any call', () => {
  const disk = new MemBlock(DISK, false, pattern);
  const d = new VirtioDriver(new VirtioBlk('vda', disk));
  d.init({ eventIdx: false });
  const w = d.request(0, [{ out: hdr(BlkT.OUT, 1) }, { out: new Uint8Array(512).fill(1) }, { out: new Uint8Array(512).fill(2) }, { inLen: 1 }], true);
  assert.equal(w?.data[0], BlkS.OK);
  assert.equal(disk.writes, 2);
  assert.ok(disk.data.subarray(512, 1024).every((b) => b === 1) && disk.data.subarray(1024, 1536).every((b) => b === 2));
  const v = new VecBlock(DISK, false, pattern);
  const dv = new VirtioDriver(new VirtioBlk('vda', v));
  dv.init({ eventIdx: false });
  // no data buffers at all: nothing to move, OK (as QEMU)
  assert.equal(dv.request(0, [{ out: hdr(BlkT.IN, 3) }, { inLen: 1 }])?.data[0], BlkS.OK);
  assert.equal(dv.request(0, [{ out: hdr(BlkT.OUT, 3) }, { inLen: 1 }], true)?.data[0], BlkS.OK);
  // not a whole number of sectors, or running off the disk: IOERR, the backend untouched
  assert.equal(dv.request(0, [{ out: hdr(BlkT.IN, 0) }, { inLen: 256 }, { inLen: 300 }, { inLen: 1 }])?.data[556], BlkS.IOERR);
  assert.equal(dv.request(0, [{ out: hdr(BlkT.OUT, 0) }, { out: new Uint8Array(100) }, { inLen: 1 }], true)?.data[0], BlkS.IOERR);
  assert.equal(dv.request(0, [{ out: hdr(BlkT.IN, DISK / 512 - 1) }, { inLen: 512 }, { inLen: 512 }, { inLen: 1 }])?.data[1024], BlkS.IOERR);
  assert.deepEqual(v.calls, { read: 0, write: 0, readv: 0, writev: 0 });
});

test('virtio-blk: a vectored call that throws gives IOERR', () => {
  const disk = new VecBlock(DISK, false, pattern);
  disk.readv = () => {
    throw new Error('EIO');
  };
  const d = new VirtioDriver(new VirtioBlk('vda', disk));
  d.init({ eventIdx: false });
  assert.equal(d.request(0, [{ out: hdr(BlkT.IN, 0) }, { inLen: 512 }, { inLen: 512 }, { inLen: 1 }])?.data[1024], BlkS.IOERR);
});

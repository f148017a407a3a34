import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constants as zc, inflateRawSync } from 'node:zlib';
import { createQcow2 } from './create.js';
import { MemoryFile, StorageError, type StorageHost } from './file.js';
import { detectFormat, openImage } from './open.js';
import { Qcow2Image } from './qcow2.js';
import { seededRandom as rng } from '../base/rng.js';

/** An in-memory host: files by name, backing names resolved against the image's folder. */
function memHost(files: Map<string, MemoryFile>): StorageHost {
  return {
    open(name, writable) {
      const f = files.get(name);
      if (!f) throw new StorageError('NOT_FOUND', `${name} does not exist`);
      return writable ? f : new MemoryFile(name, f.bytes(), true);
    },
    resolve: (from, ref) => (ref.startsWith('/') ? ref : from.replace(/[^/]*$/, '') + ref),
    inflateRaw(src, dst) {
      const out = inflateRawSync(src, { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: dst.length });
      dst.set(out);
      return out.length;
    },
  };
}


/** Apply random writes (random data, fills, zeros) to the image and to a plain array alike. */
function scribble(img: { write(o: number, b: Uint8Array): void }, ref: Uint8Array, seed: number, count: number, maxSectors: number): void {
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const sectors = 1 + Math.floor(r() * maxSectors);
    const off = Math.floor(r() * (ref.length / 512 - sectors)) * 512;
    const b = new Uint8Array(sectors * 512);
    const k = r();
    if (k < 0.6) for (let j = 0; j < b.length; j++) b[j] = (r() * 256) | 0;
    else if (k < 0.8) b.fill(1 + (i % 255));
    img.write(off, b);
    ref.set(b, off);
  }
}

function readAll(img: { sizeBytes: number; read(o: number, b: Uint8Array): void }): Uint8Array {
  const out = new Uint8Array(img.sizeBytes);
  for (let o = 0; o < out.length; o += 65536) img.read(o, out.subarray(o, Math.min(out.length, o + 65536)));
  return out;
}

function newImage(files: Map<string, MemoryFile>, name: string, size: number, clusterBits: number, backing?: { file: string; format: 'raw' | 'qcow2' }): void {
  const f = new MemoryFile(name);
  createQcow2(f, { size, clusterBits, backingFile: backing?.file, backingFormat: backing?.format });
  files.set(name, f);
}

test('a new image reads as zeros, keeps what is written, and reopens with the same contents', () => {
  for (const cb of [9, 12, 16]) {
    const files = new Map<string, MemoryFile>();
    const size = 4 << 20;
    newImage(files, '/vm/disk.qcow2', size, cb);
    const host = memHost(files);
    const img = openImage(host, '/vm/disk.qcow2', { readOnly: false });
    assert.equal(img.format, 'qcow2');
    assert.equal(img.sizeBytes, size);
    assert.ok(readAll(img).every((b) => b === 0));
    const ref = new Uint8Array(size);
    scribble(img, ref, cb, 300, cb === 9 ? 40 : 300);
    assert.deepEqual(readAll(img), ref, `cluster bits ${cb}`);
    img.close();
    const again = openImage(host, '/vm/disk.qcow2', { readOnly: true });
    assert.deepEqual(readAll(again), ref, `cluster bits ${cb}, reopened`);
  }
});

test('a whole-cluster write of zeros costs no data cluster (a zero cluster)', () => {
  const files = new Map<string, MemoryFile>();
  newImage(files, '/d.qcow2', 1 << 20, 16);
  const img = openImage(memHost(files), '/d.qcow2', { readOnly: false });
  const before = files.get('/d.qcow2')!.size();
  img.write(0, new Uint8Array(65536 * 4)); // zeros over unallocated clusters: nothing at all
  assert.equal(files.get('/d.qcow2')!.size(), before);
  img.write(65536, new Uint8Array(65536).fill(7)); // one data cluster and one L2 table
  const withData = files.get('/d.qcow2')!.size();
  assert.equal(withData, before + 2 * 65536);
  img.write(65536, new Uint8Array(65536)); // zeros over it: the cluster stays, marked zero
  assert.equal(files.get('/d.qcow2')!.size(), withData);
  const b = new Uint8Array(65536).fill(1);
  img.read(65536, b);
  assert.ok(b.every((x) => x === 0));
});

test('an overlay reads its backing file (raw or qcow2, relative name) until written; the backing file is not changed', () => {
  const files = new Map<string, MemoryFile>();
  const size = 2 << 20;
  const base = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  files.set('/imgs/base.raw', new MemoryFile('/imgs/base.raw', base));
  newImage(files, '/imgs/mid.qcow2', size, 12, { file: 'base.raw', format: 'raw' });
  const host = memHost(files);
  const mid = openImage(host, '/imgs/mid.qcow2', { readOnly: false });
  const ref = base.slice();
  scribble(mid, ref, 5, 50, 20);
  mid.close();
  newImage(files, '/imgs/top.qcow2', size, 16, { file: 'mid.qcow2', format: 'qcow2' });
  const top = openImage(host, '/imgs/top.qcow2', { readOnly: false });
  assert.deepEqual(readAll(top), ref);
  scribble(top, ref, 6, 50, 200);
  assert.deepEqual(readAll(top), ref);
  top.close();
  assert.deepEqual(files.get('/imgs/base.raw')!.bytes(), base);
});

test('refused with a clear error: missing backing file, backing loop, unknown incompatible feature, tables outside the file or overlapping', () => {
  const files = new Map<string, MemoryFile>();
  newImage(files, '/a.qcow2', 1 << 20, 16, { file: 'gone.raw', format: 'raw' });
  const host = memHost(files);
  assert.throws(() => openImage(host, '/a.qcow2', { readOnly: true }), (e: StorageError) => e.code === 'NOT_FOUND' && /backing file gone\.raw/.test(e.message));
  newImage(files, '/loop.qcow2', 1 << 20, 16, { file: 'loop.qcow2', format: 'qcow2' });
  assert.throws(() => openImage(host, '/loop.qcow2', { readOnly: true }), /loop/);

  const good = new MemoryFile('/g.qcow2');
  createQcow2(good, { size: 1 << 20 });
  const variant = (name: string, edit: (v: DataView) => void) => {
    const b = good.bytes();
    edit(new DataView(b.buffer));
    files.set(name, new MemoryFile(name, b));
    return () => openImage(host, name, { readOnly: true });
  };
  assert.throws(variant('/feat.qcow2', (v) => v.setUint32(76, 1 << 9)), (e: StorageError) => e.code === 'UNSUPPORTED' && /incompatible qcow2 features.*bit 9/.test(e.message));
  assert.throws(variant('/l1out.qcow2', (v) => v.setUint32(44, 0x100000)), /L1 table .* outside/);
  assert.throws(variant('/l1hdr.qcow2', (v) => v.setUint32(44, 0)), /L1 table offset/);
  assert.throws(variant('/l1rt.qcow2', (v) => v.setUint32(44, 0x10000)), /the refcount table .* overlaps the L1 table/);
  assert.throws(variant('/rtout.qcow2', (v) => v.setUint32(56, 100)), /refcount table .* outside/);
  assert.throws(variant('/ver.qcow2', (v) => v.setUint32(4, 4)), (e: StorageError) => e.code === 'UNSUPPORTED' && /version 4/.test(e.message));
  // an L2 table pointing at the L1 table, and one outside the file
  const withL2 = new MemoryFile('/w.qcow2');
  createQcow2(withL2, { size: 1 << 20 });
  files.set('/w.qcow2', withL2);
  const w = openImage(host, '/w.qcow2', { readOnly: false });
  w.write(0, new Uint8Array(512).fill(9));
  w.close();
  const l1 = 3 * 65536;
  assert.throws(variant2(files, host, withL2, (v) => v.setUint32(l1 + 4, 0x30000)), /L2 table 0 .* overlaps the L1 table/);
  assert.throws(variant2(files, host, withL2, (v) => v.setUint32(l1 + 4, 0x7ff0000)), /L1 entry 0 points at .* outside/);
});

function variant2(files: Map<string, MemoryFile>, host: StorageHost, src: MemoryFile, edit: (v: DataView) => void) {
  const b = src.bytes();
  edit(new DataView(b.buffer));
  files.set('/v2.qcow2', new MemoryFile('/v2.qcow2', b));
  return () => openImage(host, '/v2.qcow2', { readOnly: true });
}

test('format probing: qcow2 by its magic, other formats named, the rest raw', () => {
  const f = new MemoryFile('x');
  createQcow2(f, { size: 1 << 20 });
  assert.equal(detectFormat(f.bytes().subarray(0, 512)), 'qcow2');
  assert.equal(detectFormat(new Uint8Array(512)), 'raw');
  assert.deepEqual(detectFormat(new TextEncoder().encode('KDMV'.padEnd(512, '\0'))), { foreign: 'vmdk' });
});

test('fuzz: flipped and truncated header and table bytes are refused or read correctly, never a crash', () => {
  const files = new Map<string, MemoryFile>();
  const size = 1 << 20;
  newImage(files, '/f.qcow2', size, 12);
  const host = memHost(files);
  const img = openImage(host, '/f.qcow2', { readOnly: false });
  const ref = new Uint8Array(size);
  scribble(img, ref, 99, 60, 24);
  img.write(8192, new Uint8Array(4096)); // a zero cluster too
  ref.fill(0, 8192, 12288);
  img.close();
  const pristine = files.get('/f.qcow2')!.bytes();
  // the metadata: header cluster, refcount table and block, L1, L2 tables
  const q = Qcow2Image.open(new MemoryFile('/p', pristine, true), { readOnly: true, backing: null });
  const C = q.clusterSize;
  const h = q.header;
  const dv = new DataView(pristine.buffer);
  const l2Tables: number[] = [];
  for (let i = 0; i < h.l1Size; i++) if (dv.getUint32(h.l1TableOffset + i * 8 + 4)) l2Tables.push(dv.getUint32(h.l1TableOffset + i * 8 + 4) & ~0x1ff);
  const meta = [0, h.refcountTableOffset, dv.getUint32(h.refcountTableOffset + 4), h.l1TableOffset, ...l2Tables];
  const r = rng(2024);
  let refused = 0;
  let readOk = 0;
  for (let iter = 0; iter < 1500; iter++) {
    const b = pristine.slice();
    let len = b.length;
    const what: string[] = [];
    let zeroFlagFlip = false;
    const n = 1 + Math.floor(r() * 3);
    for (let k = 0; k < n; k++) {
      const kind = r();
      if (kind < 0.1) {
        len = Math.floor(r() * b.length);
        what.push(`truncate to ${len}`);
      } else {
        const base = meta[Math.floor(r() * meta.length)];
        const span = base === 0 ? 200 : C;
        const at = base + Math.floor(r() * span);
        const bit = Math.floor(r() * 8);
        b[at] ^= 1 << bit;
        what.push(`flip bit ${bit} of byte ${at}`);
        // bit 0 of an L2 entry is the zero flag: the image is valid either way, and the cluster reads as zeros
        if (l2Tables.includes(base) && at % 8 === 7 && bit === 0) zeroFlagFlip = true;
      }
    }
    files.set('/z.qcow2', new MemoryFile('/z.qcow2', b.subarray(0, len)));
    let got: Uint8Array;
    try {
      const z = openImage(host, '/z.qcow2', { readOnly: false, format: 'qcow2' });
      got = readAll(z);
      // writing must also either work or be refused cleanly
      z.write(Math.floor(r() * (z.sizeBytes / 512 - 8)) * 512, new Uint8Array(4096).fill(3));
      z.close();
    } catch (e) {
      assert.ok(e instanceof StorageError, `${what.join(', ')}: ${(e as Error).stack}`);
      assert.ok(e.message.length > 20, `${what.join(', ')}: a terse message: ${e.message}`);
      refused++;
      continue;
    }
    const common = Math.min(got.length, ref.length);
    const same = Buffer.compare(Buffer.from(got.subarray(0, common)), Buffer.from(ref.subarray(0, common))) === 0;
    assert.ok(same || zeroFlagFlip, `${what.join(', ')}: the image opened but read different data`);
    readOk++;
  }
  assert.ok(refused > 300 && readOk > 300, `refused ${refused}, read ${readOk}`);
});

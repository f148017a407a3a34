import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createQcow2 } from './create.js';
import { MemoryFile, StorageError, type StorageFile, type StorageHost } from './file.js';
import { IovCursor, iovLength, type IoVec } from './iovec.js';
import { openImage } from './open.js';
import { RawImage } from './raw.js';
import { seededRandom as rng } from '../base/rng.js';

/** A MemoryFile that counts calls and takes a vector in one (as readv/writev do). */
class CountingFile implements StorageFile {
  reads = 0;
  writes = 0;
  constructor(readonly inner: MemoryFile) {}
  get name(): string {
    return this.inner.name;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  size(): number {
    return this.inner.size();
  }
  read(pos: number, dst: Uint8Array): number {
    this.reads++;
    return this.inner.read(pos, dst);
  }
  write(pos: number, src: Uint8Array): void {
    this.writes++;
    this.inner.write(pos, src);
  }
  readv(pos: number, dsts: IoVec): number {
    this.reads++;
    let done = 0;
    for (const d of dsts) {
      const n = this.inner.read(pos + done, d);
      done += n;
      if (n < d.length) break;
    }
    return done;
  }
  writev(pos: number, srcs: IoVec): void {
    this.writes++;
    for (const s of srcs) {
      this.inner.write(pos, s);
      pos += s.length;
    }
  }
  sync(): void {}
  close(): void {}
}

function host(files: Map<string, MemoryFile>, counted: Map<string, CountingFile>): StorageHost {
  return {
    open(name, writable) {
      const f = files.get(name);
      if (!f) throw new StorageError('NOT_FOUND', `${name} does not exist`);
      const c = new CountingFile(writable ? f : new MemoryFile(name, f.bytes(), true));
      counted.set(name, c);
      return c;
    },
    resolve: (from, ref) => (ref.startsWith('/') ? ref : from.replace(/[^/]*$/, '') + ref),
  };
}


/** Cut `len` bytes into buffers of random lengths (1 byte up to 9 KiB: misaligned, across clusters). */
function split(r: () => number, buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < buf.length; ) {
    const n = Math.min(buf.length - at, 1 + Math.floor(r() * 9000));
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

/**
 * A chain with every kind of cluster: a raw base, a qcow2 over it with some
 * clusters written, a top qcow2 with data, zero clusters and holes.
 */
function chain(cb: number, size: number): { files: Map<string, MemoryFile>; counted: Map<string, CountingFile>; h: StorageHost; ref: Uint8Array } {
  const files = new Map<string, MemoryFile>();
  const counted = new Map<string, CountingFile>();
  const base = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  files.set('/i/base.raw', new MemoryFile('/i/base.raw', base));
  for (const [name, back] of [['/i/mid.qcow2', 'base.raw'], ['/i/top.qcow2', 'mid.qcow2']] as const) {
    const f = new MemoryFile(name);
    createQcow2(f, { size, clusterBits: cb, backingFile: back, backingFormat: back.endsWith('raw') ? 'raw' : 'qcow2' });
    files.set(name, f);
  }
  const h = host(files, counted);
  const ref = base.slice();
  const r = rng(cb);
  for (const name of ['/i/mid.qcow2', '/i/top.qcow2']) {
    const img = openImage(h, name, { readOnly: false });
    const C = 1 << cb;
    for (let i = 0; i < 40; i++) {
      const off = Math.floor(r() * (size / C - 4)) * C + Math.floor(r() * 4) * 512;
      const b = new Uint8Array((1 + Math.floor(r() * 3 * (C / 512))) * 512);
      const k = r();
      if (k < 0.6) for (let j = 0; j < b.length; j++) b[j] = (r() * 256) | 0; // data; else whole zero clusters where aligned
      img.write(off, b);
      ref.set(b, off);
    }
    img.close();
  }
  return { files, counted, h, ref };
}

test('qcow2 readv equals read across cluster boundaries, zero clusters, holes and backing files, misaligned buffers', () => {
  for (const cb of [10, 12, 16]) {
    const size = 2 << 20;
    const { h, ref: disk } = chain(cb, size);
    const img = openImage(h, '/i/top.qcow2', { readOnly: true });
    const r = rng(100 + cb);
    for (let i = 0; i < 60; i++) {
      const off = Math.floor(r() * (size / 512)) * 512 + (i % 3 === 0 ? Math.floor(r() * 512) : 0);
      const len = Math.floor(r() * 300_000) + (i % 5 === 0 ? 0 : 1);
      const want = new Uint8Array(len); // the disk's bytes, zeros past its end
      want.set(disk.subarray(off, off + len));
      const got = new Uint8Array(len).fill(0x33);
      img.readv(off, split(r, got));
      assert.deepEqual(got, want, `cluster bits ${cb}, ${len} bytes at ${off}`);
    }
    // past the end of the disk reads as zeros, in the vector too
    const tail = new Uint8Array(8192).fill(9);
    img.readv(size - 4096, split(r, tail));
    const ref = new Uint8Array(8192);
    img.read(size - 4096, ref);
    assert.deepEqual(tail, ref);
    assert.ok(tail.subarray(4096).every((b) => b === 0));
    // an empty vector and empty buffers are no-ops
    img.readv(0, []);
    img.readv(0, [new Uint8Array(0), new Uint8Array(0)]);
  }
});

test('qcow2 writev leaves the same image, byte for byte, as write of the same bytes', () => {
  for (const cb of [10, 12, 16]) {
    const size = 2 << 20;
    const a = chain(cb, size);
    const b = chain(cb, size);
    const ia = openImage(a.h, '/i/top.qcow2', { readOnly: false });
    const ib = openImage(b.h, '/i/top.qcow2', { readOnly: false });
    const r = rng(200 + cb);
    for (let i = 0; i < 80; i++) {
      const sectors = 1 + Math.floor(r() * 300);
      const off = Math.floor(r() * (size / 512 - sectors)) * 512;
      const buf = new Uint8Array(sectors * 512);
      const k = r();
      if (k < 0.6) for (let j = 0; j < buf.length; j++) buf[j] = (r() * 256) | 0;
      else if (k < 0.8) buf.fill(1 + (i % 255));
      ia.write(off, buf);
      ib.writev(off, split(r, buf.slice()));
    }
    ia.close();
    ib.close();
    assert.deepEqual(b.files.get('/i/top.qcow2')!.bytes(), a.files.get('/i/top.qcow2')!.bytes(), `cluster bits ${cb}`);
  }
});

test('qcow2: a sequential request over contiguous clusters is one file call, whatever the number of buffers', () => {
  const files = new Map<string, MemoryFile>();
  const counted = new Map<string, CountingFile>();
  const f = new MemoryFile('/d.qcow2');
  createQcow2(f, { size: 8 << 20, clusterBits: 16 });
  files.set('/d.qcow2', f);
  const img = openImage(host(files, counted), '/d.qcow2', { readOnly: false });
  const file = counted.get('/d.qcow2')!;
  const data = new Uint8Array(1 << 20).map((_, i) => (i * 13) >>> 5);
  const pages = (b: Uint8Array) => Array.from({ length: b.length / 4096 }, (_, i) => b.subarray(i * 4096, (i + 1) * 4096));
  const w0 = file.writes;
  img.writev(0, pages(data)); // allocating: 16 fresh clusters in one writev, then an L2 table and refcounts
  const dataWrites = file.writes - w0;
  assert.ok(dataWrites <= 4, `${dataWrites} writes`);
  const w1 = file.writes;
  img.writev(0, pages(data)); // in place: one writev
  assert.equal(file.writes - w1, 1);
  const r0 = file.reads;
  const back = new Uint8Array(data.length);
  img.readv(0, pages(back));
  assert.equal(file.reads - r0, 1);
  assert.deepEqual(back, data);
  // the old path: one call per page
  const r1 = file.reads;
  for (const p of pages(back)) img.read(p.byteOffset, p);
  assert.equal(file.reads - r1, 256);
  img.close();
});

test('raw readv/writev: one file call; the part past the end of the disk reads as zeros; writes past it refused', () => {
  const inner = new MemoryFile('/r.img', new Uint8Array(64 * 1024).map((_, i) => i & 0xff));
  const file = new CountingFile(inner);
  const img = new RawImage(file);
  const buf = new Uint8Array(16 * 1024).fill(1);
  const parts = split(rng(1), buf);
  img.readv(56 * 1024, parts);
  assert.equal(file.reads, 1);
  assert.deepEqual(buf.subarray(0, 8192), inner.bytes().subarray(56 * 1024));
  assert.ok(buf.subarray(8192).every((b) => b === 0));
  const src = new Uint8Array(8192).fill(0xab);
  img.writev(4096, split(rng(2), src));
  assert.equal(file.writes, 1);
  assert.ok(inner.bytes().subarray(4096, 4096 + 8192).every((b) => b === 0xab));
  assert.throws(() => img.writev(60 * 1024, [new Uint8Array(4096), new Uint8Array(4096)]), StorageError);
});

test('IovCursor hands out consecutive views across buffer boundaries', () => {
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  const c = new IovCursor([a, new Uint8Array(0), b]);
  assert.deepEqual(c.take(2).map((x) => [...x]), [[1, 2]]);
  assert.deepEqual(c.take(2).map((x) => [...x]), [[3], [4]]);
  assert.deepEqual(c.rest().map((x) => [...x]), [[5]]);
  assert.equal(iovLength([a, b]), 5);
});

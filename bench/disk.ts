/**
 * Disk image throughput through the block backends the IDE drives use
 * (src/host/node/block.ts): qcow2 against raw, the named baseline, on the
 * same file system. Sequential 64 KiB requests (what Linux's IDE driver
 * sends for large I/O) and random 4 KiB ones, reads and writes, into the
 * host's page cache (no O_DIRECT: the guest's own FLUSH decides durability).
 *
 * qcow2 rows: writes into a new image (every request allocates clusters,
 * fsync barriers on, the default), the same without barriers, rewrites of
 * allocated clusters, and reads. Usage: node dist/bench/disk.js [MiB, default 256]
 */
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockBackend } from '../src/devices/backends.js';
import { openBlockFile } from '../src/host/node/block.js';
import { NodeFile, nodeStorageHost } from '../src/host/node/file.js';
import { createQcow2 } from '../src/storage/create.js';
import { openImage } from '../src/storage/open.js';

const MIB = Number(process.argv[2] ?? 256);
const SIZE = MIB << 20;
const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-disk-'));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
}

/** MB/s of a pass over the disk: sequential requests of `req` bytes, or `count` random 4 KiB ones. */
function pass(b: BlockBackend, op: 'read' | 'write', pattern: 'seq' | 'rand'): number {
  const req = pattern === 'seq' ? 65536 : 4096;
  const buf = new Uint8Array(req).map((_, i) => (i * 13 + 1) & 0xff);
  const count = pattern === 'seq' ? SIZE / req : Math.min(20000, SIZE / req);
  const r = rng(op === 'read' ? 1 : 2);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const off = pattern === 'seq' ? i * req : Math.floor(r() * (SIZE / req)) * req;
    if (op === 'read') b.read(off, buf);
    else b.write(off, buf);
  }
  b.flush();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (count * req) / 1e6 / s;
}

function newQcow2(name: string): string {
  const path = join(dir, name);
  closeSync(openSync(path, 'w'));
  const f = NodeFile.open(path, true);
  createQcow2(f, { size: SIZE });
  f.close();
  return path;
}

function newRaw(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, '');
  truncateSync(path, SIZE); // sparse, as truncate -s makes it
  return path;
}

const rows: [string, number, number][] = []; // name, qcow2 MB/s, raw MB/s
try {
  console.log(`disk image throughput, ${MIB} MiB disks in ${tmpdir()} (page cache), through the IDE block backends`);
  // raw baseline: written sequentially first so that reads read data
  const rawPath = newRaw('raw.img');
  const raw = openBlockFile(rawPath, 'rw', 'raw', 'raw');
  const rawSeqW = pass(raw.backend, 'write', 'seq');
  const rawSeqR = pass(raw.backend, 'read', 'seq');
  const rawRandW = pass(raw.backend, 'write', 'rand');
  const rawRandR = pass(raw.backend, 'read', 'rand');
  raw.close();

  const q = openBlockFile(newQcow2('seq.qcow2'), 'rw', 'qcow2', 'qcow2');
  rows.push(['seq write 64K, allocating', pass(q.backend, 'write', 'seq'), rawSeqW]);
  rows.push(['seq write 64K, rewrite', pass(q.backend, 'write', 'seq'), rawSeqW]);
  rows.push(['seq read 64K', pass(q.backend, 'read', 'seq'), rawSeqR]);
  rows.push(['rand write 4K, rewrite', pass(q.backend, 'write', 'rand'), rawRandW]);
  rows.push(['rand read 4K', pass(q.backend, 'read', 'rand'), rawRandR]);
  q.close();

  const qr = openBlockFile(newQcow2('rand.qcow2'), 'rw', 'qcow2', 'qcow2');
  rows.push(['rand write 4K, allocating', pass(qr.backend, 'write', 'rand'), rawRandW]);
  qr.close();
  const nb = openImage(nodeStorageHost, newQcow2('nobarrier.qcow2'), { readOnly: false, format: 'qcow2', barriers: false });
  rows.push(['seq write 64K, allocating, no barriers', pass(nb, 'write', 'seq'), rawSeqW]);
  nb.close();
  const nbr = openImage(nodeStorageHost, newQcow2('nobarrier-rand.qcow2'), { readOnly: false, format: 'qcow2', barriers: false });
  rows.push(['rand write 4K, allocating, no barriers', pass(nbr, 'write', 'rand'), rawRandW]);
  nbr.close();

  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`${'workload'.padEnd(w)}  qcow2 MB/s   raw MB/s   qcow2/raw`);
  for (const [name, qv, rv] of rows) {
    console.log(`${name.padEnd(w)}  ${qv.toFixed(1).padStart(10)} ${rv.toFixed(1).padStart(10)}   ${(qv / rv).toFixed(2).padStart(8)}x`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

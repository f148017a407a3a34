// qcow2 against the reference, Debian's qemu-img (qemu-utils): images qemu-img
// makes read back byte for byte; images tsvm writes pass `qemu-img check` and
// `qemu-img compare` against a raw file given the same writes; a writer killed
// with SIGKILL at random points never leaves a corrupt image.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NodeFile, nodeStorageHost } from '../../src/host/node/file.js';
import { createQcow2 } from '../../src/storage/create.js';
import { openImage } from '../../src/storage/open.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-qcow2-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (n: string) => join(dir, n);

function qemuImg(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', cwd: dir });
  if (r.error) throw new Error(`qemu-img could not run (${r.error.message}); install Debian's qemu-utils (tools/setup.sh does)`);
  return { code: r.status, out: r.stdout + r.stderr };
}
function qemuImgOk(...args: string[]): string {
  const r = qemuImg(...args);
  assert.equal(r.code, 0, `qemu-img ${args.join(' ')}: ${r.out}`);
  return r.out;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
}

const SIZE = 24 << 20;
/** A raw disk with random data, repeated text, zeros and a sector-sized fragment here and there. */
function makeRaw(name: string): Buffer {
  const r = rng(7);
  const b = Buffer.alloc(SIZE);
  for (let i = 2 << 20; i < 6 << 20; i++) b[i] = (r() * 256) | 0;
  b.fill('tsvm qcow2 test ', 10 << 20, 13 << 20);
  for (let k = 0; k < 40; k++) {
    const at = Math.floor(r() * (SIZE / 512)) * 512;
    b.fill(k + 1, at, at + 512);
  }
  writeFileSync(p(name), b);
  return b;
}
const raw = makeRaw('source.raw');

function readAll(name: string): Buffer {
  const img = openImage(nodeStorageHost, p(name), { readOnly: true });
  const out = Buffer.alloc(img.sizeBytes);
  for (let o = 0; o < out.length; o += 1 << 20) img.read(o, out.subarray(o, Math.min(out.length, o + (1 << 20))));
  img.close();
  return out;
}

test('images made by qemu-img read back equal to their source: plain, compressed (zlib), version 2, small clusters', () => {
  qemuImgOk('convert', '-O', 'qcow2', 'source.raw', 'plain.qcow2');
  qemuImgOk('convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zlib', 'source.raw', 'compressed.qcow2');
  qemuImgOk('convert', '-O', 'qcow2', '-o', 'compat=0.10', 'source.raw', 'v2.qcow2');
  qemuImgOk('convert', '-O', 'qcow2', '-o', 'cluster_size=4096', 'source.raw', 'small.qcow2');
  for (const n of ['plain.qcow2', 'compressed.qcow2', 'v2.qcow2', 'small.qcow2']) {
    assert.ok(readAll(n).equals(raw), `${n} reads differently from source.raw`);
  }
  // an empty image made by qemu-img create reads as zeros
  qemuImgOk('create', '-q', '-f', 'qcow2', 'empty.qcow2', '8M');
  assert.ok(readAll('empty.qcow2').equals(Buffer.alloc(8 << 20)));
});

test('overlays made by qemu-img create -b (raw and qcow2 backing, relative names) read through to the backing file', () => {
  qemuImgOk('convert', '-O', 'qcow2', 'source.raw', 'base.qcow2');
  qemuImgOk('create', '-q', '-f', 'qcow2', '-b', 'source.raw', '-F', 'raw', 'over-raw.qcow2');
  qemuImgOk('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'over-q.qcow2');
  // qemu-io writes into the overlay: the result is what qemu-img convert makes of it
  const io = spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 3M 100k', '-c', 'write -z 11M 1M', 'over-q.qcow2'], { cwd: dir, encoding: 'utf8' });
  assert.equal(io.status, 0, io.stderr);
  qemuImgOk('convert', '-O', 'raw', 'over-q.qcow2', 'over-q.raw');
  assert.ok(readAll('over-raw.qcow2').equals(raw));
  assert.ok(readAll('over-q.qcow2').equals(readFileSync(p('over-q.raw'))));
});

/** The same seeded writes to an image (through the storage layer) and to a raw copy. */
function scribble(name: string, rawName: string, seed: number, count: number): void {
  const img = openImage(nodeStorageHost, p(name), { readOnly: false });
  const ref = openImage(nodeStorageHost, p(rawName), { readOnly: false, format: 'raw' });
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const sectors = 1 + Math.floor(r() * (r() < 0.15 ? 700 : 24));
    const off = Math.floor(r() * (img.sizeBytes / 512 - sectors)) * 512;
    const b = new Uint8Array(sectors * 512);
    const k = r();
    if (k < 0.5) for (let j = 0; j < b.length; j++) b[j] = (r() * 256) | 0;
    else if (k < 0.8) b.fill(1 + (i % 255)); // else zeros
    img.write(off, b);
    ref.write(off, b);
  }
  img.flush();
  img.close();
  ref.close();
}

test('images tsvm writes pass qemu-img check and compare equal to a raw file given the same writes', () => {
  const cases: [string, () => void][] = [
    ['tsvm-new.qcow2', () => {
      closeSync(openSync(p('tsvm-new.qcow2'), 'w'));
      const f = NodeFile.open(p('tsvm-new.qcow2'), true);
      createQcow2(f, { size: SIZE });
      f.close();
      writeFileSync(p('tsvm-new.raw'), Buffer.alloc(SIZE));
    }],
    ['tsvm-512.qcow2', () => {
      closeSync(openSync(p('tsvm-512.qcow2'), 'w'));
      const f = NodeFile.open(p('tsvm-512.qcow2'), true);
      createQcow2(f, { size: SIZE, clusterBits: 9 }); // small clusters: the refcount table has to grow
      f.close();
      writeFileSync(p('tsvm-512.raw'), Buffer.alloc(SIZE));
    }],
    ['qemu-data.qcow2', () => {
      qemuImgOk('convert', '-O', 'qcow2', 'source.raw', 'qemu-data.qcow2');
      writeFileSync(p('qemu-data.raw'), raw);
    }],
    ['qemu-compressed.qcow2', () => {
      qemuImgOk('convert', '-c', '-O', 'qcow2', 'source.raw', 'qemu-compressed.qcow2');
      writeFileSync(p('qemu-compressed.raw'), raw);
    }],
    ['qemu-v2.qcow2', () => {
      qemuImgOk('convert', '-O', 'qcow2', '-o', 'compat=0.10', 'source.raw', 'qemu-v2.qcow2');
      writeFileSync(p('qemu-v2.raw'), raw);
    }],
    ['tsvm-overlay.qcow2', () => {
      closeSync(openSync(p('tsvm-overlay.qcow2'), 'w'));
      const f = NodeFile.open(p('tsvm-overlay.qcow2'), true);
      createQcow2(f, { size: SIZE, backingFile: 'source.raw', backingFormat: 'raw' });
      f.close();
      writeFileSync(p('tsvm-overlay.raw'), raw);
    }],
  ];
  for (const [name, make] of cases) {
    make();
    const rawName = name.replace('.qcow2', '.raw');
    scribble(name, rawName, name.length * 31, 300);
    qemuImgOk('check', name);
    const cmp = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', name, rawName);
    assert.equal(cmp.code, 0, `${name}: ${cmp.out}`);
  }
  // the overlay names its backing file as given, relative to its folder, with its format
  const info = JSON.parse(qemuImgOk('info', '--output=json', 'tsvm-overlay.qcow2'));
  assert.equal(info['backing-filename'], 'source.raw');
  assert.equal(info['backing-filename-format'], 'raw');
  assert.ok(readFileSync(p('source.raw')).equals(raw), 'the backing file was changed');
});

test('a writer killed with SIGKILL at random points leaves an image qemu-img check passes (leaks allowed)', async () => {
  const writer = fileURLToPath(new URL('./writer.js', import.meta.url));
  const r = rng(42);
  closeSync(openSync(p('killed.qcow2'), 'w'));
  const f = NodeFile.open(p('killed.qcow2'), true);
  createQcow2(f, { size: 64 << 20, clusterBits: 12 });
  f.close();
  let leaks = 0;
  for (let round = 0; round < 16; round++) {
    const delay = 20 + Math.floor(r() * 400);
    const child = spawn(process.execPath, [writer, p('killed.qcow2'), String(round + 1)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const status = await new Promise<string>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      child.stdout.once('data', () => {
        timer = setTimeout(() => child.kill('SIGKILL'), delay);
      });
      child.on('exit', (code, sig) => {
        if (timer) clearTimeout(timer);
        resolve(sig === 'SIGKILL' ? 'killed' : `exited with status ${code} before it was killed: ${out.slice(-2000)}`);
      });
    });
    assert.equal(status, 'killed', `round ${round}`);
    const check = qemuImg('check', 'killed.qcow2');
    // 0: clean; 3: leaked clusters only; 2: corruption
    assert.ok(check.code === 0 || check.code === 3, `round ${round} (killed after ${delay} ms): qemu-img check exit ${check.code}: ${check.out}`);
    if (check.code === 3) leaks++;
  }
  // and the image is still usable by tsvm
  assert.equal(readAll('killed.qcow2').length, 64 << 20);
  void leaks;
});

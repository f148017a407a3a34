import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockWritev } from '../../devices/backends.js';
import { BlockBackendError, openBlockFile, SNAPSHOT_CHUNK_BYTES } from './block.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tsvm-block-'));
}

function image(dir: string, size: number): { path: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(size).map((_, i) => (i * 31 + 7) & 0xff);
  const path = join(dir, 'disk.img');
  writeFileSync(path, bytes);
  return { path, bytes };
}

test('rw: reads and writes go to the file; reads past the end are zero', () => {
  const dir = tempDir();
  try {
    const { path, bytes } = image(dir, 8192);
    const o = openBlockFile(path, 'rw', '-hda');
    assert.equal(o.warning, null);
    assert.equal(o.backend.sizeBytes, 8192);
    assert.equal(o.backend.readOnly, false);
    const buf = new Uint8Array(512);
    o.backend.read(1024, buf);
    assert.deepEqual(buf, bytes.subarray(1024, 1536));
    o.backend.write(512, new Uint8Array(512).fill(0xee));
    o.backend.flush();
    const tail = new Uint8Array(16).fill(1);
    o.backend.read(8192 - 8, tail);
    assert.deepEqual([...tail.subarray(8)], new Array(8).fill(0));
    o.close();
    const after = readFileSync(path);
    assert.ok(after.subarray(512, 1024).every((b) => b === 0xee));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('snapshot: guest writes are seen by the guest, the file stays untouched', () => {
  const dir = tempDir();
  try {
    const { path, bytes } = image(dir, 3 * SNAPSHOT_CHUNK_BYTES);
    const o = openBlockFile(path, 'snapshot', '-hda');
    assert.equal(o.backend.readOnly, false);
    // A write straddling two chunks.
    const w = new Uint8Array(1024).fill(0x5a);
    o.backend.write(SNAPSHOT_CHUNK_BYTES - 512, w);
    const r = new Uint8Array(2048);
    o.backend.read(SNAPSHOT_CHUNK_BYTES - 1024, r);
    assert.deepEqual(r.subarray(0, 512), bytes.subarray(SNAPSHOT_CHUNK_BYTES - 1024, SNAPSHOT_CHUNK_BYTES - 512));
    assert.ok(r.subarray(512, 1536).every((b) => b === 0x5a));
    assert.deepEqual(r.subarray(1536), bytes.subarray(SNAPSHOT_CHUNK_BYTES + 512, SNAPSHOT_CHUNK_BYTES + 1024));
    o.backend.flush();
    o.close();
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('ro: opened read-only; the backend says so', () => {
  const dir = tempDir();
  try {
    const { path } = image(dir, 4096);
    const o = openBlockFile(path, 'ro', '-cdrom');
    assert.equal(o.backend.readOnly, true);
    assert.throws(() => o.backend.write(0, new Uint8Array(512)), BlockBackendError);
    o.close();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

/**
 * A regular file this process may read but not open for writing. As root,
 * permission bits do not stop writes, but sysfs refuses them; without either
 * the test is skipped.
 */
function unwritableFile(dir: string): string | null {
  if (process.getuid?.() !== 0) {
    const { path } = image(dir, 4096);
    chmodSync(path, 0o444);
    return path;
  }
  const sys = '/sys/kernel/notes';
  try {
    if (!statSync(sys).isFile() || statSync(sys).size === 0) return null;
    closeSync(openSync(sys, 'r+'));
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES' ? sys : null;
  }
}

test('a file the user cannot write opens read-only with a warning', (t) => {
  const dir = tempDir();
  try {
    const path = unwritableFile(dir);
    if (!path) {
      t.skip('no unwritable regular file available');
      return;
    }
    const o = openBlockFile(path, 'rw', '-hda');
    assert.equal(o.backend.readOnly, true);
    assert.match(o.warning ?? '', /^-hda: .* is not writable, so it is opened read-only.*-snapshot/);
    o.backend.read(0, new Uint8Array(16));
    o.close();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

/** A regular file this process cannot open for reading: mode 000, or as root a write-only sysfs attribute. */
function unreadableFile(dir: string): string | null {
  if (process.getuid?.() !== 0) {
    const { path } = image(dir, 4096);
    chmodSync(path, 0o000);
    return path;
  }
  for (const sys of ['/sys/bus/pci/rescan', '/sys/kernel/mm/ksm/run']) {
    try {
      if (!statSync(sys).isFile()) continue;
      closeSync(openSync(sys, 'r'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') return sys;
    }
  }
  return null;
}

test('an unreadable file is a clear UNREADABLE error (opened read-only only, never written)', (t) => {
  const dir = tempDir();
  try {
    const path = unreadableFile(dir);
    if (!path) {
      t.skip('no unreadable regular file available');
      return;
    }
    assert.throws(
      () => openBlockFile(path, 'ro', '-cdrom'),
      (e: unknown) => e instanceof BlockBackendError && e.code === 'UNREADABLE' && /-cdrom: cannot read .*permissions/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('clear errors: missing file, directory, empty file', () => {
  const dir = tempDir();
  try {
    const expectCode = (path: string, code: string, re: RegExp) =>
      assert.throws(
        () => openBlockFile(path, 'rw', '-hda'),
        (e: unknown) => e instanceof BlockBackendError && e.code === code && re.test(e.message),
      );
    expectCode(join(dir, 'nope.img'), 'NOT_FOUND', /-hda: .*nope\.img does not exist/);
    expectCode(dir, 'IS_DIRECTORY', /is a directory/);
    const empty = join(dir, 'empty.img');
    writeFileSync(empty, new Uint8Array(0));
    expectCode(empty, 'EMPTY', /is empty.*truncate/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('qcow2 is told by its header; a probed raw image refuses a guest write that would make it look like qcow2', async () => {
  const { createQcow2 } = await import('../../storage/create.js');
  const { NodeFile } = await import('./file.js');
  const dir = tempDir();
  try {
    const q = join(dir, 'd.qcow2');
    closeSync(openSync(q, 'w'));
    const f = NodeFile.open(q, true);
    createQcow2(f, { size: 1 << 20 });
    f.close();
    const o = openBlockFile(q, 'rw', '-hda');
    assert.equal(o.backend.sizeBytes, 1 << 20);
    o.backend.write(4096, new Uint8Array(512).fill(0x42));
    const b = new Uint8Array(512);
    o.backend.read(4096, b);
    assert.ok(b.every((x) => x === 0x42));
    o.close();

    const { path } = image(dir, 8192);
    const header = readFileSync(q).subarray(0, 512);
    const raw = openBlockFile(path, 'rw', '-hda');
    assert.throws(() => raw.backend.write(0, header), /image-format header into sector 0 .* format=raw/);
    raw.backend.write(0, new Uint8Array(512).fill(1)); // an ordinary boot sector is fine
    raw.close();
    const given = openBlockFile(path, 'rw', '-drive', 'raw');
    given.backend.write(0, header); // format=raw given: the user asked for it
    given.close();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('readv/writev on raw files and in snapshot mode: same bytes as read/write, zeros past the end, the probed-format guard kept', () => {
  const dir = tempDir();
  try {
    const { path, bytes } = image(dir, 64 * 1024);
    const parts = (b: Uint8Array, sizes: number[]) => {
      let k = 0;
      return sizes.map((n) => b.subarray(k, (k += n)));
    };
    for (const mode of ['rw', 'snapshot'] as const) {
      const o = openBlockFile(path, mode, '-hda');
      const got = new Uint8Array(12 * 1024).fill(0x55);
      o.backend.readv!(56 * 1024, parts(got, [1000, 3096, 4096, 4096]));
      assert.deepEqual(got.subarray(0, 8192), bytes.subarray(56 * 1024), mode);
      assert.ok(got.subarray(8192).every((b) => b === 0), mode);
      const src = new Uint8Array(8192).map((_, i) => (i * 3) & 0xff);
      blockWritev(o.backend, 4096 + 512, parts(src, [512, 4096, 3584]));
      const back = new Uint8Array(8192);
      o.backend.readv!(4096 + 512, parts(back, [4000, 4192]));
      assert.deepEqual(back, src, mode);
      o.close();
    }
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(4608, 4608 + 8192)), new Uint8Array(8192).map((_, i) => (i * 3) & 0xff));
    // a probed raw image still refuses a qcow2 header in sector 0 when it comes as a vector
    const o = openBlockFile(path, 'rw', '-hda');
    const magic = new Uint8Array(512);
    magic.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    assert.throws(() => o.backend.writev!(0, [magic.subarray(0, 4), magic.subarray(4)]), BlockBackendError);
    o.backend.writev!(0, [new Uint8Array(256).fill(1), new Uint8Array(768).fill(2)]);
    const head = new Uint8Array(1024);
    o.backend.read(0, head);
    assert.ok(head.subarray(0, 256).every((b) => b === 1) && head.subarray(256).every((b) => b === 2));
    o.close();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

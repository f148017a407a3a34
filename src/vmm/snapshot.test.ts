// Snapshot files: a machine saved to bytes and restored into a fresh machine
// built from the same spec runs on exactly as the original; damaged, foreign
// and other-configuration files are refused with clear errors and the
// machine they were offered to is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMachine } from './resources.js';
import { defaultSpec, type MachineSpec } from './spec.js';
import { applyRam, applyRamPages, decodeRam, encodeRam, encodeSnapshot, parseSnapshot, PAGE_BYTES, restoreSnapshot, SnapshotError } from './snapshot.js';
import type { Machine } from '../board/machine.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-snap-'));

// echo COM1 input to the debug console, with a counter in RAM that changes as it runs
const ECHO = `
bits 16
org 0
start:
xor ax, ax
mov ds, ax
.wait: inc dword [0x500]
mov dx, 0x3fd
in al, dx
test al, 1
jz .wait
mov dx, 0x3f8
in al, dx
out 0xe9, al
cmp al, 'q'
jne .wait
cli
hlt
times 0xfff0 - ($ - $$) db 0
jmp 0xf000:start
times 0x10000 - ($ - $$) db 0
`;
writeFileSync(join(dir, 'echo.asm'), ECHO);
execFileSync('nasm', ['-f', 'bin', join(dir, 'echo.asm'), '-o', join(dir, 'echo.bin')]);

function spec(over: Partial<MachineSpec> = {}, con = 'con.txt'): MachineSpec {
  return defaultSpec({ memoryBytes: 2 << 20, bios: 'echo.bin', vgaBios: null, serial: 'none', debugcon: `file:${con}`, ...over });
}

function open(s: MachineSpec): Machine {
  return openMachine(s, { baseDir: dir }).machine;
}

function run(m: Machine, slices: number, input = ''): void {
  if (input) m.serial[0].receive(Buffer.from(input));
  for (let i = 0; i < slices && m.runSlice(20_000) === 'running'; i++);
}

test('save, restore into a fresh machine from the same spec, and run on identically', () => {
  const s = spec();
  const a = open(s);
  run(a, 30, 'ab');
  const bytes = encodeSnapshot(a, s, { name: 'one', description: 'after ab' });
  const file = parseSnapshot(bytes);
  assert.equal(file.header.name, 'one');
  assert.equal(file.header.ramBytes, 2 << 20);
  assert.ok(bytes.length < 200 * 1024, `a 2 MiB machine (and 16 MiB of VGA memory) that is mostly zero pages made a ${bytes.length}-byte file`);

  const b = open(spec({}, 'con-b.txt'));
  restoreSnapshot(b, s, file);
  assert.deepEqual(b.saveState(), a.saveState());
  run(a, 30, 'cq');
  run(b, 30, 'cq');
  assert.equal(a.stopReason, 'halt');
  assert.deepEqual(b.saveState(), a.saveState());
});

test('truncated, corrupted, unknown-version, foreign and other-configuration files are refused and change nothing', () => {
  const s = spec();
  const a = open(s);
  run(a, 10, 'x');
  const good = encodeSnapshot(a, s);
  const b = open(s);
  run(b, 3);
  const before = b.saveState();
  const refuse = (bytes: Uint8Array, re: RegExp, sp = s) => {
    assert.throws(
      () => restoreSnapshot(b, sp, parseSnapshot(bytes)),
      (e: unknown) => e instanceof SnapshotError && re.test(e.message),
      `expected ${re}`,
    );
    assert.deepEqual(b.saveState(), before, 'a refused snapshot changed the machine');
  };
  for (const cut of [0, 5, 11, 12, 40, good.length >> 1, good.length - 20, good.length - 1]) refuse(good.subarray(0, cut), /not a tsvm snapshot|truncated/);
  // a flipped byte anywhere past the signature: a checksum, a length, a name or a header field
  for (let i = 0; i < 200; i++) {
    const at = 12 + Math.floor(((i * 2654435761) >>> 0) % (good.length - 12));
    const bad = good.slice();
    bad[at] ^= 1 << i % 8;
    assert.throws(() => restoreSnapshot(b, s, parseSnapshot(bad)), SnapshotError, `flip at ${at}`);
    assert.deepEqual(b.saveState(), before);
  }
  const v2 = good.slice();
  v2[8] = 3;
  refuse(v2, /format version 3; this tsvm reads version 2 only \(a newer tsvm/);
  v2[8] = 1;
  refuse(v2, /format version 1; this tsvm reads version 2 only \(an older tsvm/);
  refuse(Buffer.from('PNG not a snapshot at all'), /not a tsvm snapshot/);
  refuse(good, /another machine configuration: RAM is 4 MiB here and 2 MiB/, spec({ memoryBytes: 4 << 20 }));
});

test('the RAM stream skips zero pages, and a delta carries only the dirty pages', () => {
  const ram = new Uint8Array(64 * PAGE_BYTES);
  ram[3 * PAGE_BYTES + 7] = 1;
  ram[40 * PAGE_BYTES] = 2;
  const full = decodeRam(encodeRam(ram));
  assert.equal(full.presentBytes, 2 * PAGE_BYTES);
  const dst = new Uint8Array(ram.length).fill(0x55);
  applyRam(full, dst);
  assert.deepEqual(dst, ram);

  const changed = ram.slice();
  changed[10 * PAGE_BYTES] = 9;
  const dirty = new Uint8Array(8);
  dirty[10 >> 3] |= 1 << (10 & 7);
  const delta = decodeRam(encodeRam(changed, dirty));
  assert.equal(delta.presentBytes, PAGE_BYTES);
  applyRam(delta, dst);
  assert.deepEqual(dst, changed);
});

test('the file on disk is what encodeSnapshot made', () => {
  const s = spec();
  const a = open(s);
  run(a, 5);
  const p = join(dir, 'a.snap');
  writeFileSync(p, encodeSnapshot(a, s));
  assert.equal(parseSnapshot(new Uint8Array(readFileSync(p))).header.spec.memoryBytes, 2 << 20);
});

test('VGA memory travels as a page stream of its own, zero pages skipped, and comes back exactly', () => {
  const s = spec();
  const a = open(s);
  run(a, 5);
  // a picture scattered over video memory: some pages, not all
  for (let i = 0; i < a.vga.vram.length; i += 3 * PAGE_BYTES + 17) a.vga.vram[i] = (i >>> 12) & 0xff || 1;
  const bytes = encodeSnapshot(a, s);
  const file = parseSnapshot(bytes);
  const arr = [...file.sections.keys()].filter((n) => n.startsWith('arr '));
  assert.ok(arr.some((n) => /vram/.test(n)), `no arr section for VGA memory among ${arr.join(', ')}`);
  for (const [name, b] of file.sections) if (name.startsWith('dev/')) assert.ok(b.length < 64 << 10, `section ${name} still holds ${b.length} bytes`);
  const b = open(spec({}, 'con-b.txt'));
  restoreSnapshot(b, s, file);
  assert.deepEqual(b.vga.vram, a.vga.vram);
  assert.deepEqual(b.saveState(), a.saveState());

  // an arr section moved to a place its state does not have is refused, and nothing changes
  const before = b.saveState();
  const moved = new Map(file.sections);
  const name = arr.find((n) => /vram/.test(n)) as string;
  moved.set(name.replace('vram', 'nowhere'), moved.get(name) as Uint8Array);
  moved.delete(name);
  assert.throws(() => restoreSnapshot(b, s, { header: file.header, sections: moved }), /has no place in section/);
  assert.deepEqual(b.saveState(), before);
});

test('RAM larger than a batch, with scattered, incompressible and compressible pages, comes back exactly', () => {
  const ram = new Uint8Array(1024 * PAGE_BYTES);
  let x = 12345;
  for (let p = 0; p < 1024; p++) {
    if (p % 7 === 3) continue; // zero pages between the others: batches are gathered
    const page = ram.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
    if (p < 512) {
      for (let i = 0; i < PAGE_BYTES; i++) page[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24; // noise: stored raw
    } else page.fill(p & 0xff); // compresses well
  }
  const stream = encodeRam(ram);
  assert.ok(stream.length < ram.length * 0.6, `the stream is ${stream.length} bytes`);
  const d = decodeRam(stream);
  assert.ok(d.chunks.length > 2, 'a 4 MiB RAM goes out in several batches');
  const dst = new Uint8Array(ram.length).fill(0xaa);
  applyRam(d, dst);
  assert.ok(Buffer.from(dst).equals(Buffer.from(ram)));
  // a batch claiming more bytes than the bitmap has pages is refused
  const bad = stream.slice();
  const at = 1 + 4 + 4 + 1024 / 8 + 1;
  new DataView(bad.buffer).setUint32(at, new DataView(bad.buffer).getUint32(at, true) + PAGE_BYTES, true);
  assert.throws(() => decodeRam(bad), SnapshotError);
});

test('loading the snapshot last saved or loaded writes back only the pages written since, and the machine comes back exactly', () => {
  const s = spec();
  const pages = (2 << 20) / 4096;
  const a = open(s);
  run(a, 30, 'ab');
  const file = parseSnapshot(encodeSnapshot(a, s, { name: 'one' }));
  const saved = a.saveState();
  run(a, 30, 'cd'); // the guest's counter page changes
  a.mem.write32(0x10000, 0x12345678); // and a page written over the memory bus
  const back = restoreSnapshot(a, s, file);
  assert.ok(back.ramPagesWritten >= 2 && back.ramPagesWritten < 8, `${back.ramPagesWritten} pages written back`);
  assert.deepEqual(a.saveState(), saved);
  // loaded, the machine's RAM is that snapshot again: the next way back is as short
  run(a, 30, 'ef');
  assert.ok(restoreSnapshot(a, s, file).ramPagesWritten < 8);
  assert.deepEqual(a.saveState(), saved);

  // a machine the snapshot is not from, a machine that saved another snapshot since, and a mark moved by someone else: all of RAM
  const b = open(spec({}, 'con-b.txt'));
  run(b, 10, 'x');
  assert.equal(restoreSnapshot(b, s, file).ramPagesWritten, pages);
  assert.deepEqual(b.saveState(), saved);
  encodeSnapshot(a, s, { name: 'two' });
  run(a, 10, 'g');
  assert.equal(restoreSnapshot(a, s, file).ramPagesWritten, pages);
  assert.deepEqual(a.saveState(), saved);
  a.mem.markClean();
  run(a, 10, 'h');
  assert.equal(restoreSnapshot(a, s, file).ramPagesWritten, pages);
  assert.deepEqual(a.saveState(), saved);
  // and the machine runs on from there as the original did
  run(a, 30, 'cq');
  assert.equal(a.stopReason, 'halt');
});

test('a partial RAM decode inflates only the batches holding wanted pages and puts exactly those pages back', () => {
  // every other page present: 4 MiB of pages, in several batches
  const ram = new Uint8Array(8 << 20);
  for (let p = 0; p < ram.length / 4096; p += 2) ram.fill((p * 7) & 0xff || 1, p * 4096, p * 4096 + 4096);
  const stream = encodeRam(ram);
  const want = new Uint8Array(ram.length / 4096 / 8);
  for (const p of [0, 1, 3, 400, 2047, 2046]) want[p >> 3] |= 1 << (p & 7); // in the first and the last batch, present and absent
  const d = decodeRam(stream, 'the RAM stream', want);
  // three wanted pages are present (0, 400, 2046): at most their three batches were inflated
  const inflated = d.chunks.filter((c) => c.length > 0).length;
  assert.ok(d.chunks.length > 3 && inflated >= 2 && inflated <= 3, `${inflated} of ${d.chunks.length} batches inflated`);
  const target = new Uint8Array(ram.length).fill(0xee);
  applyRamPages(d, target, want);
  for (let p = 0; p < ram.length / 4096; p++) {
    const got = target.subarray(p * 4096, p * 4096 + 4096);
    const exp = want[p >> 3] & (1 << (p & 7)) ? ram.subarray(p * 4096, p * 4096 + 4096) : new Uint8Array(4096).fill(0xee);
    assert.deepEqual(got, exp, `page ${p}`);
  }
});

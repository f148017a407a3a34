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
import { applyRam, decodeRam, encodeRam, encodeSnapshot, parseSnapshot, PAGE_BYTES, restoreSnapshot, SnapshotError } from './snapshot.js';
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
  v2[8] = 2;
  refuse(v2, /format version 2; this tsvm reads version 1 only/);
  refuse(Buffer.from('PNG not a snapshot at all'), /not a tsvm snapshot/);
  refuse(good, /another machine configuration: RAM is 4 MiB here and 2 MiB/, spec({ memoryBytes: 4 << 20 }));
});

test('the RAM stream skips zero pages, and a delta carries only the dirty pages', () => {
  const ram = new Uint8Array(64 * PAGE_BYTES);
  ram[3 * PAGE_BYTES + 7] = 1;
  ram[40 * PAGE_BYTES] = 2;
  const full = decodeRam(encodeRam(ram));
  assert.equal(full.pages.length, 2 * PAGE_BYTES);
  const dst = new Uint8Array(ram.length).fill(0x55);
  applyRam(full, dst);
  assert.deepEqual(dst, ram);

  const changed = ram.slice();
  changed[10 * PAGE_BYTES] = 9;
  const dirty = new Uint8Array(8);
  dirty[10 >> 3] |= 1 << (10 & 7);
  const delta = decodeRam(encodeRam(changed, dirty));
  assert.equal(delta.pages.length, PAGE_BYTES);
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

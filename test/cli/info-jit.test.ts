// `info jit` at the monitor (Ctrl-A C) of `tsvm run`, as a user types it: a
// small ROM enters flat 32-bit protected mode, runs a loop, says "ready" on
// the debug console and spins; the answer must show which tier ran what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsvmChild } from '../helpers/child.js';
import { ROM_TAIL } from '../helpers/roms.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-info-jit-'));

function spinRom(): string {
  const src = join(dir, 'spin.asm');
  const bin = join(dir, 'spin.bin');
  writeFileSync(
    src,
    `bits 16
org 0
start:
    cli
    lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(0xf0000 + pm32)
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x90000
    mov ecx, 200000
    xor eax, eax
.l: add eax, ecx
    rol eax, 3
    mov [0x1000], eax
    dec ecx
    jnz .l
    mov dx, 0xe9
    mov esi, 0xf0000 + msg
.m: mov al, [esi]
    test al, al
    jz .spin
    out dx, al
    inc esi
    jmp .m
.spin:
    add eax, 1
    jmp .spin
msg: db "ready", 10, 0
gdt: dq 0
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
gdtr: dw 23
    dd 0xf0000 + gdt
bits 16
${ROM_TAIL}
`,
  );
  const r = spawnSync('nasm', ['-f', 'bin', src, '-o', bin], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nasm failed: ${r.stderr}`);
  return bin;
}

const ROM = spinRom();

/**
 * Run the ROM on a tier, wait for "ready", ask `info jit` and return its
 * answer; with `until`, ask again (for up to 30 s) until the answer says so.
 */
async function infoJit(accel: string[], until?: (answer: string) => boolean): Promise<string> {
  const c = new TsvmChild(['run', '-bios', ROM, '-m', '2M', '-debugcon', 'stdio', ...accel]);
  try {
    await c.waitFor(/ready/, 0, 60_000);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await c.monitor('info jit', /js blocks:[^\n]*\n|interpreter[^\n]*\n(?![\s\S]*js blocks)|unknown command[^\n]*\n/);
      if (until === undefined || until(answer) || Date.now() > deadline) return answer;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    c.kill();
  }
}

function count(text: string, row: string): number {
  const m = new RegExp(`${row}\\s+(\\d+)`).exec(text);
  assert.ok(m, `no '${row}' row in:\n${text}`);
  return Number(m[1]);
}

test('info jit on the default tier: most of the loop ran in wasm regions, with exits by reason', { timeout: 300_000 }, async () => {
  const out = await infoJit([]);
  assert.match(out, /tier: wasm, threshold \d+/);
  const total = count(out, 'instructions run:');
  const regions = count(out, 'wasm regions');
  assert.ok(total > 1_000_000, `too few instructions: ${out}`);
  assert.ok(regions > total / 2, `less than half in regions:\n${out}`);
  assert.equal(count(out, 'wasm regions') + count(out, 'js blocks') + count(out, 'interpreter'), total);
  assert.match(out, /wasm regions: [1-9]\d* compiled \([1-9]\d* instructions/);
  // on Linux the CLI times compiles in CPU time of the compiling thread (src/vmm/cpuclock.ts), and says so
  if (process.platform === 'linux') assert.match(out, /wasm regions: [^\n]* [\d.]+ m?s CPU compiling/);
  assert.match(out, /calls from JS \d+, calls by the chain dispatcher \d+/);
  for (const why of ['slice end', 'off the page', 'instruction not compiled', 'slow path']) assert.match(out, new RegExp(`${why}\\s+\\d+`));
});

test('info jit on the blocks and interp tiers', { timeout: 300_000 }, async () => {
  const blocks = await infoJit(['-accel', 'tsvm,tier=blocks']);
  assert.match(blocks, /tier: blocks/);
  assert.ok(count(blocks, 'js blocks') > 0, blocks);
  assert.doesNotMatch(blocks, /wasm regions/);
  const interp = await infoJit(['-accel', 'tsvm,tier=interp']);
  assert.match(interp, /tier: interp\r?\n/);
  assert.equal(count(interp, 'interpreter'), count(interp, 'instructions run:'));
});

test('hot regions: the spinning loop is compiled again by the optimiser and shows as hot; hot=0 never optimises', { timeout: 300_000 }, async () => {
  // on V8's workers the optimised code is put in place when it is ready, a moment after the region got hot
  const hot = await infoJit(['-accel', 'tsvm,hot=200000'], (a) => !/on another thread \(0 in place/.test(a));
  const m = /optimised when hot (\d+) \(/.exec(hot);
  assert.ok(m, `no 'optimised when hot' line in:\n${hot}`);
  assert.ok(Number(m[1]) >= 1, `no region optimised:\n${hot}`);
  // the hottest region (EIP page, millions of instructions) is marked as optimised
  assert.match(hot, /hottest: [0-9a-f]+ [\d.]+M\*/);
  // with a core to spare, TurboFan compiles on one of V8's workers, and the line says so;
  // on one core, on the guest's own thread
  if (availableParallelism() > 1) assert.match(hot, /optimised when hot \d+ \([\d.]+ MiB of wasm, [^)]*\) on another thread \([1-9]\d* in place, \d+ still compiling, \d+ dropped/);
  else assert.doesNotMatch(hot, /on another thread/);
  const never = await infoJit(['-accel', 'tsvm,hot=0']);
  assert.match(never, /optimised when hot 0 \(/);
  assert.doesNotMatch(never, /hottest: [^\n]*[\d.]+M\*/);
});

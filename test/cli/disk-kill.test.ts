// SIGKILL during a guest's disk writes, end to end: a VM folder whose guest
// (a small ROM) writes one sector into every 64 KiB of its qcow2 disk in a
// loop over ATA PIO, with FLUSH CACHE every 8 writes, so the image is
// allocating clusters (L2 tables, refcounts) while `tsvm start` is killed,
// at a different moment each time. After every kill the disk must pass
// qemu-img check (leaked clusters allowed) and read back, through
// qemu-img convert, as zeros except whole sectors of the guest's pattern
// where it wrote; and the VM starts again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';
import { seeded } from '../helpers/seeded.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-diskkill-'));
const CLUSTERS = 2048; // a 128 MiB disk: most kills land while clusters are still being allocated
const PATTERN = 0x5a;

// writes sector (n * 128) for n = 0, 1, ... CLUSTERS-1, again and again; prints '.' after each write
const WRITER = `bits 16
org 0
start:
xor ax, ax
mov ds, ax
mov es, ax
mov ss, ax
mov sp, 0x7000
${COM1_INIT_8N1}
mov di, 0x1000
mov cx, 512
mov al, ${PATTERN}
rep stosb
xor bx, bx
.loop: mov dx, 0x1f6
mov al, 0xe0
out dx, al
mov dx, 0x1f2
mov al, 1
out dx, al
mov ax, bx
shl ax, 7
mov dx, 0x1f3
out dx, al
mov ax, bx
shr ax, 1
mov dx, 0x1f4
out dx, al
mov ax, bx
shr ax, 9
mov dx, 0x1f5
out dx, al
mov dx, 0x1f7
mov al, 0x30
out dx, al
call busy
.drq: in al, dx
test al, 8
jz .drq
mov si, 0x1000
mov cx, 256
mov dx, 0x1f0
rep outsw
call busy
test bx, 7
jnz .noflush
mov dx, 0x1f7
mov al, 0xe7
out dx, al
call busy
.noflush: mov al, '.'
call putc
inc bx
and bx, ${CLUSTERS - 1}
jmp .loop
busy: mov dx, 0x1f7
.b: in al, dx
test al, 0x80
jnz .b
ret
putc: mov ah, al
mov dx, 0x3fd
.t: in al, dx
test al, 0x20
jz .t
mov al, ah
mov dx, 0x3f8
out dx, al
ret
${ROM_TAIL}
`;

/** Start the VM, wait for its first write, and SIGKILL it `delayMs` later; the number of writes seen. */
async function startAndKill(delayMs: number): Promise<number> {
  const c = spawn(process.execPath, [TSVM, 'start', 'w', '-timeout', '120'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  c.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  c.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const done = new Promise<void>((r) => c.on('exit', () => ((exited = true), r())));
  const deadline = Date.now() + 60_000;
  while (!out.includes('.')) {
    if (exited) throw new Error(`tsvm start exited before the guest wrote: ${out}`);
    if (Date.now() > deadline) throw new Error(`the guest wrote nothing: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, delayMs));
  c.kill('SIGKILL');
  await done;
  return out.split('.').length - 1;
}

test('killing tsvm during a guest\'s allocating disk writes leaves a qcow2 image qemu-img checks and reads as the guest wrote', { timeout: 600_000 }, async (t) => {
  writeFileSync(join(dir, 'writer.asm'), WRITER);
  const nasm = spawnSync('nasm', ['-f', 'bin', join(dir, 'writer.asm'), '-o', join(dir, 'writer.bin')], { encoding: 'utf8' });
  assert.equal(nasm.status, 0, nasm.stderr);
  const c = spawnSync(process.execPath, [TSVM, 'create', 'w', '-bios', join(dir, 'writer.bin'), '-m', '8M', '-disk-size', '128M'], { cwd: dir, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const disk = join(dir, 'w.tsvm', 'disks', 'hda.qcow2');
  const rnd = seeded(0x6d2b79f5);
  const writes: number[] = [];
  let most = 0;
  for (let i = 0; i < 12; i++) {
    writes.push(await startAndKill(rnd(1500)));
    const chk = spawnSync('qemu-img', ['check', disk], { encoding: 'utf8' });
    assert.ok(chk.status === 0 || chk.status === 3, `kill ${i}: qemu-img check exited ${chk.status}: ${chk.stdout}${chk.stderr}`);
    const raw = join(dir, 'disk.raw');
    const conv = spawnSync('qemu-img', ['convert', '-O', 'raw', disk, raw], { encoding: 'utf8' });
    assert.equal(conv.status, 0, `kill ${i}: qemu-img convert: ${conv.stderr}`);
    const b = readFileSync(raw);
    assert.equal(b.length, CLUSTERS << 16);
    let written = 0;
    for (let n = 0; n < CLUSTERS; n++) {
      const at = n << 16;
      const first = b[at];
      assert.ok(first === 0 || first === PATTERN, `kill ${i}: cluster ${n} starts with ${first}`);
      for (let k = 1; k < 512; k++) if (b[at + k] !== first) assert.fail(`kill ${i}: sector ${n * 128} is torn at byte ${k}`);
      for (let k = 512; k < 1 << 16; k++) if (b[at + k] !== 0) assert.fail(`kill ${i}: byte ${at + k} outside the written sectors is ${b[at + k]}`);
      if (first === PATTERN) written++;
    }
    // what a kill loses is unflushed writes; clusters flushed before stay
    most = Math.max(most, written);
    rmSync(raw);
  }
  t.diagnostic(`writes seen before each kill: ${writes.join(', ')}; clusters written at most: ${most} of ${CLUSTERS}`);
  assert.ok(most > 0, 'no kill came after a flushed write');
  // and the VM still starts and writes
  assert.ok((await startAndKill(50)) > 0);
  rmSync(dir, { recursive: true, force: true });
});

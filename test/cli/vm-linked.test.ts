// qcow2 VM folders through the CLI: snapshots as overlays (savevm/loadvm
// of a running VM, revert of a stopped one), linked clones that boot on the
// source's snapshot images, the source refusing to delete a shared
// snapshot, a full clone, and qemu-img check on every image tsvm wrote. The
// guest is a small ROM: 'w' then a byte fills disk sector 0 with the byte
// (ATA PIO write + FLUSH CACHE, then prints W); '?' reads sector 0 back and
// prints <d=XY> (its first and last bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSVM, TsvmChild } from '../helpers/child.js';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-linked-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function qemu(tool: string, ...args: string[]) {
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 60_000, cwd: dir });
  return { code: r.status, out: r.stdout + r.stderr };
}

const DISK_ROM = `
bits 16
org 0
start:
xor ax, ax
mov ds, ax
mov es, ax
mov ss, ax
mov sp, 0x7000
${COM1_INIT_8N1}
.loop: call getc
cmp al, 'w'
je .write
cmp al, '?'
je .read
jmp .loop
.write: call getc
mov di, 0x1000
mov cx, 512
rep stosb
mov al, 0x30
call ata
mov si, 0x1000
mov cx, 256
mov dx, 0x1f0
rep outsw
call busy
mov dx, 0x1f7
mov al, 0xe7
out dx, al
call busy
mov al, 'W'
call putc
jmp .loop
.read: mov al, 0x20
call ata
mov di, 0x1000
mov cx, 256
mov dx, 0x1f0
rep insw
mov si, msg
.m: cs lodsb
test al, al
jz .n
call putc
jmp .m
.n: mov al, [0x1000]
call putc
mov al, [0x11ff]
call putc
mov al, '>'
call putc
jmp .loop
; LBA 0, one sector, command AL; returns when the data is ready
ata: push ax
mov dx, 0x1f6
mov al, 0xe0
out dx, al
mov dx, 0x1f2
mov al, 1
out dx, al
xor al, al
inc dx
out dx, al
inc dx
out dx, al
inc dx
out dx, al
pop ax
mov dx, 0x1f7
out dx, al
call busy
.drq: in al, dx
test al, 8
jz .drq
ret
busy: mov dx, 0x1f7
.b: in al, dx
test al, 0x80
jnz .b
ret
getc: mov dx, 0x3fd
.w: in al, dx
test al, 1
jz .w
mov dx, 0x3f8
in al, dx
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
msg: db '<d=', 0
${ROM_TAIL}
`;

/** Start a VM, run `steps` (type, wait for a reply), then stop it with Ctrl-A X. */
async function session(vm: string, steps: (c: TsvmChild) => Promise<void>): Promise<void> {
  const c = new TsvmChild(['start', join(dir, vm), '-timeout', '300']);
  try {
    await c.waitFor(/booting|resum/, 0, 60_000);
    await steps(c);
    c.child.stdin.write('\x01x');
    assert.equal(await c.exit(60_000), 0, c.tail());
  } finally {
    c.kill();
  }
}

async function type(c: TsvmChild, text: string, re: RegExp): Promise<void> {
  const from = c.out.length;
  c.child.stdin.write(text);
  await c.waitFor(re, from, 60_000);
}

async function monitor(c: TsvmChild, line: string, re: RegExp): Promise<void> {
  const from = c.out.length;
  c.child.stdin.write(`\x01c${line}\r`);
  await c.waitFor(re, from, 60_000);
  c.child.stdin.write('\x01c');
}

function images(vm: string): string[] {
  const out: string[] = [];
  for (const sub of ['disks', 'snapshots']) for (const f of readdirSync(join(dir, vm, sub))) if (f.endsWith('.qcow2')) out.push(join(dir, vm, sub, f));
  return out;
}

function folderBytes(p: string): number {
  let n = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) n += e.isDirectory() ? folderBytes(join(p, e.name)) : statSync(join(p, e.name)).blocks * 512;
  return n;
}

test('qcow2 VM folders: snapshot overlays, linked and full clones, qemu-img check', { timeout: 600_000 }, async () => {
  writeFileSync(join(dir, 'disk.asm'), DISK_ROM);
  assert.equal(spawnSync('nasm', ['-f', 'bin', join(dir, 'disk.asm'), '-o', join(dir, 'disk.bin')]).status, 0);
  const c = tsvm('create', 'src', '-bios', join(dir, 'disk.bin'), '-m', '2M', '-disk-size', '4G');
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /disk disks\/hda\.qcow2/);

  // a running VM: disk A, savevm, disk B, loadvm back to A, disk C, savevm
  await session('src.tsvm', async (s) => {
    await type(s, 'wA', /W/);
    await type(s, '?', /<d=AA>/);
    await monitor(s, 'savevm one', /snapshot one saved/);
    await type(s, 'wB', /W/);
    await type(s, '?', /<d=BB>/);
    await monitor(s, 'loadvm one', /back at snapshot one/);
    await type(s, '?', /<d=AA>/);
    await type(s, 'wC', /W/);
    await monitor(s, 'savevm two', /snapshot two saved/);
  });
  // the snapshot images are frozen overlays, not copies: each holds only what was written after its parent
  const chain = JSON.parse(qemu('qemu-img', 'info', '--output=json', '--backing-chain', 'src.tsvm/disks/hda.qcow2').out) as { filename: string; 'backing-filename'?: string }[];
  assert.equal(chain.length, 3, 'disk -> two -> one');
  assert.equal(chain[0]['backing-filename']?.startsWith('../snapshots/'), true, 'backing names are relative');

  // revert the stopped VM: the next start resumes at one, disk A
  assert.match(tsvm('snapshot', 'src', 'revert', 'one').out, /back at snapshot one/);
  await session('src.tsvm', async (s) => {
    await type(s, '?', /<d=AA>/);
  });
  // more data, written by qemu-io into the current disk, then a disks-only snapshot of it
  assert.equal(qemu('qemu-io', '-c', 'write -P 0x5a 1M 8M', 'src.tsvm/disks/hda.qcow2').code, 0);
  assert.equal(tsvm('snapshot', 'src', 'save', 'big').code, 0);

  // a linked clone at 'big': no disk data copied, boots and sees the source's disk
  const before = folderBytes(join(dir, 'src.tsvm'));
  const l = tsvm('clone', '--linked', 'src', 'lnk', '--snapshot', 'big');
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, /linked clone .*lnk\.tsvm of src at snapshot big/);
  assert.ok(folderBytes(join(dir, 'lnk.tsvm')) < 1 << 20, `the linked clone takes ${folderBytes(join(dir, 'lnk.tsvm'))} bytes; the source has ${before}`);
  const map = JSON.parse(qemu('qemu-img', 'map', '--output=json', 'lnk.tsvm/disks/hda.qcow2').out) as { depth: number; data: boolean }[];
  assert.ok(!map.some((m) => m.depth === 0 && m.data), 'the clone\'s own overlay holds no data');
  assert.equal(qemu('qemu-io', '-r', '-c', 'read -P 0x5a 1M 8M', 'lnk.tsvm/disks/hda.qcow2').code, 0);
  await session('lnk.tsvm', async (s) => {
    await type(s, '?', /<d=AA>/);
    await type(s, 'wD', /W/);
    await type(s, '?', /<d=DD>/);
  });
  // the clone's write stayed in the clone
  await session('src.tsvm', async (s) => {
    await type(s, '?', /<d=AA>/);
  });

  // the source refuses to delete the shared snapshot, naming the clone; others go
  const del = tsvm('snapshot', 'src', 'delete', 'big');
  assert.equal(del.code, 1);
  assert.match(del.err, /snapshot 'big' of VM src is shared with the linked clone lnk/);
  assert.equal(tsvm('snapshot', 'src', 'delete', 'one').code, 0, 'one is not shared');
  assert.match(tsvm('snapshot', 'src', 'list').out, /big/);
  // a linked clone without --snapshot shares a new snapshot of the present state
  const l2 = tsvm('clone', '--linked', 'src', 'lnk2');
  assert.equal(l2.code, 0, l2.err);
  assert.match(tsvm('snapshot', 'src', 'list').out, /clone-lnk2/);

  // a full clone is self-contained: its backing chain stays in its folder; it boots
  assert.equal(tsvm('clone', 'src', 'full').code, 0);
  const fchain = JSON.parse(qemu('qemu-img', 'info', '--output=json', '--backing-chain', 'full.tsvm/disks/hda.qcow2').out) as { filename: string }[];
  for (const f of fchain) assert.match(f.filename, /^full\.tsvm\//);
  await session('full.tsvm', async (s) => {
    await type(s, '?', /<d=AA>/);
  });
  // a full clone of the linked clone copies the source's images it needs: self-contained too
  const f2 = tsvm('clone', 'lnk', 'full2');
  assert.equal(f2.code, 0, f2.err);
  const f2chain = JSON.parse(qemu('qemu-img', 'info', '--output=json', '--backing-chain', 'full2.tsvm/disks/hda.qcow2').out) as { filename: string }[];
  assert.ok(f2chain.length >= 2);
  for (const f of f2chain) assert.match(f.filename, /^full2\.tsvm\//);
  await session('full2.tsvm', async (s) => {
    await type(s, '?', /<d=DD>/);
  });

  // the source and its clones moved together still work
  spawnSync('mkdir', [join(dir, 'moved')]);
  spawnSync('mv', [join(dir, 'src.tsvm'), join(dir, 'lnk.tsvm'), join(dir, 'lnk2.tsvm'), join(dir, 'moved')]);
  assert.equal(qemu('qemu-io', '-r', '-c', 'read -P 0x44 0 512', 'moved/lnk.tsvm/disks/hda.qcow2').code, 0);
  await session('moved/lnk.tsvm', async (s) => {
    await type(s, '?', /<d=DD>/);
  });

  // every image tsvm wrote passes qemu-img check
  const all = [...images('moved/src.tsvm'), ...images('moved/lnk.tsvm'), ...images('moved/lnk2.tsvm'), ...images('full.tsvm'), ...images('full2.tsvm')];
  assert.ok(all.length >= 6);
  for (const img of all) {
    const r = qemu('qemu-img', 'check', img);
    assert.equal(r.code, 0, `${img}: ${r.out}`);
  }
});

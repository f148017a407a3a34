// A guest writes to a qcow2 disk through the CLI, as a user runs it: SeaBIOS boots
// a boot sector from the qcow2 disk, the boot sector writes a pattern with INT 13h,
// and qemu-img (Debian's qemu-utils) checks the image and compares it with a raw
// file given the same writes. Also: -drive's mistakes get clear messages.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-guestdisk-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (n: string) => join(dir, n);

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, 'run', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}
function qemuImg(...args: string[]) {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', cwd: dir });
  if (r.error) throw new Error(`qemu-img could not run (${r.error.message}); install Debian's qemu-utils`);
  return { code: r.status, out: r.stdout + r.stderr };
}

const FIRST_LBA = 100; // not cluster-aligned: the first and last clusters are partly written
const BLOCKS = 40; // of 64 sectors each: 1.25 MiB

/** A boot sector that writes BLOCKS blocks of pattern (byte i of block k is (i * 7 + k) & 255) from FIRST_LBA, then says OK on the debug console. */
function bootSector(): Buffer {
  const src = `bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  mov [drive], dl
  xor bp, bp              ; block number
next:
  mov ax, 0x1000
  mov es, ax
  xor di, di
  xor bx, bx              ; byte index
fill:
  mov ax, bx
  mov cx, 7
  mul cx
  add ax, bp
  stosb
  inc bx
  cmp bx, 0x8000
  jne fill
  mov ax, bp
  shl ax, 6
  add ax, ${FIRST_LBA}
  mov [dap_lba], ax
  mov si, dap
  mov ah, 0x43
  xor al, al
  mov dl, [drive]
  int 0x13
  jc fail
  inc bp
  cmp bp, ${BLOCKS}
  jne next
  mov si, ok
  jmp say
fail:
  mov si, bad
say:
  lodsb
  test al, al
  jz done
  out 0xe9, al
  jmp say
done:
  cli
  hlt
drive: db 0
ok: db "OK", 10, 0
bad: db "INT13 FAILED", 10, 0
align 4
dap: db 16, 0
  dw 64
  dw 0, 0x1000
dap_lba: dq 0
times 510 - ($ - $$) db 0
dw 0xaa55
`;
  writeFileSync(p('boot.asm'), src);
  const r = spawnSync('nasm', ['-f', 'bin', p('boot.asm'), '-o', p('boot.bin')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nasm: ${r.stderr}`);
  return readFileSync(p('boot.bin'));
}

/** The disk before the guest runs, and what it must hold afterwards. */
function disks(): { before: Buffer; expected: Buffer } {
  const before = Buffer.alloc(8 << 20);
  bootSector().copy(before, 0);
  for (let i = 512; i < before.length; i += 4096) before[i] = (i >> 12) & 0xff; // something to keep around the writes
  const expected = Buffer.from(before);
  for (let k = 0; k < BLOCKS; k++) {
    for (let i = 0; i < 0x8000; i++) expected[(FIRST_LBA + k * 64) * 512 + i] = (((i * 7) & 0xffff) + k) & 0xff;
  }
  return { before, expected };
}

test('a guest writes through -drive format=qcow2 and -hda (auto-detected qcow2 over a raw backing file); qemu-img check and compare agree', () => {
  const { before, expected } = disks();
  writeFileSync(p('before.raw'), before);
  writeFileSync(p('expected.raw'), expected);
  assert.equal(qemuImg('convert', '-O', 'qcow2', 'before.raw', 'disk.qcow2').code, 0);
  const runs: [string, string[]][] = [
    ['disk.qcow2', ['-drive', `file=${p('disk.qcow2')},format=qcow2,if=ide,index=0`]],
    ['overlay.qcow2', ['-hda', p('overlay.qcow2')]],
  ];
  assert.equal(qemuImg('create', '-q', '-f', 'qcow2', '-b', 'before.raw', '-F', 'raw', 'overlay.qcow2').code, 0);
  for (const [name, args] of runs) {
    const con = p(`${name}.con`);
    const r = tsvm(...args, '-boot', 'c', '-serial', 'none', '-debugcon', `file:${con}`, '-m', '16M', '-timeout', '100');
    assert.equal(r.code, 0, `${name}: tsvm exited ${r.code} ${r.signal ?? ''}: ${r.err.slice(-2000)}`);
    assert.doesNotMatch(r.err, /warning/i, `${name}: no warnings expected`);
    assert.match(readFileSync(con, 'utf8'), /Booting from Hard Disk[^]*\nOK\n$/, `${name}: the guest's INT 13h writes`);
    const check = qemuImg('check', name);
    assert.equal(check.code, 0, `${name}: ${check.out}`);
    const cmp = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', name, 'expected.raw');
    assert.equal(cmp.code, 0, `${name}: ${cmp.out}`);
  }
  assert.ok(readFileSync(p('before.raw')).equals(before), 'the backing file was changed');
});

test('-drive snapshot=on keeps the qcow2 file unchanged; readonly=on refuses the guest writes', () => {
  const { before } = disks();
  writeFileSync(p('s.raw'), before);
  assert.equal(qemuImg('convert', '-O', 'qcow2', 's.raw', 's.qcow2').code, 0);
  copyFileSync(p('s.qcow2'), p('s-orig.qcow2'));
  const con = p('s.con');
  const r = tsvm('-drive', `file=${p('s.qcow2')},format=qcow2,if=ide,snapshot=on`, '-boot', 'c', '-serial', 'none', '-debugcon', `file:${con}`, '-m', '16M', '-timeout', '100');
  assert.equal(r.code, 0, r.err);
  assert.match(readFileSync(con, 'utf8'), /\nOK\n$/);
  assert.ok(readFileSync(p('s.qcow2')).equals(readFileSync(p('s-orig.qcow2'))), 'snapshot=on changed the file');
  const ro = tsvm('-drive', `file=${p('s.qcow2')},format=qcow2,readonly=on`, '-boot', 'c', '-serial', 'none', '-debugcon', `file:${con}`, '-m', '16M', '-timeout', '100');
  assert.equal(ro.code, 0, ro.err);
  assert.match(readFileSync(con, 'utf8'), /\nINT13 FAILED\n$/);
});

test('-drive mistakes are refused with a message that says what to do', () => {
  writeFileSync(p('x.raw'), Buffer.alloc(1 << 20));
  const cases: [string[], RegExp][] = [
    [['-drive', `file=${p('x.raw')},format=vmdk`], /format=vmdk is not supported; tsvm reads raw and qcow2/],
    [['-drive', `file=${p('x.raw')},if=scsi`], /if=scsi is not supported; tsvm has if=ide and if=virtio/],
    [['-drive', `file=${p('x.raw')},index=3`], /no drive on the secondary slave/],
    [['-drive', `file=${p('x.raw')},index=2`], /index=2 is the CD-ROM drive/],
    [['-hda', p('x.raw'), '-drive', `file=${p('x.raw')},index=0`], /index 0 \(-hda\) is already in use/],
    [['-drive', `format=raw`], /file=PATH is needed/],
    [['-drive', `file=${p('x.raw')},cache=none`], /does not know the 'cache' property/],
    [['-drive', `file=${p('x.raw')},format=qcow2`], /no qcow2 magic/],
    [['-drive', `file=${p('nope.qcow2')},format=qcow2`], /does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = tsvm(...args, '-run-for', '0.01');
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}: ${r.err}`);
    assert.match(r.err, re, args.join(' '));
  }
});

// The virtio options of `tsvm run` as a user meets them: bad options get a
// message that says what to write instead, and good ones put the devices on
// the PCI bus where firmware finds them (a tiny ROM reads their ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSVM } from '../helpers/child.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-cli-virtio-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * A ROM that reads the vendor/device dword of PCI slots 3..6 through
 * configuration mechanism #1 and prints each as 8 hex digits on the debug console.
 */
function pciScanRom(): string {
  const src = join(dir, 'scan.asm');
  const bin = join(dir, 'scan.bin');
  writeFileSync(
    src,
    `bits 16
org 0
start:
  mov ebx, 0x80001800
  mov cx, 4
.slot:
  mov dx, 0xcf8
  mov eax, ebx
  out dx, eax
  mov dx, 0xcfc
  in eax, dx
  mov si, 8
.digit:
  rol eax, 4
  push eax
  and al, 0x0f
  add al, '0'
  cmp al, '9'
  jbe .out
  add al, 7
.out:
  out 0xe9, al
  pop eax
  dec si
  jnz .digit
  mov al, 10
  out 0xe9, al
  add ebx, 0x800
  loop .slot
  cli
  hlt
times 0xfff0 - ($ - $$) db 0
jmp 0xf000:start
times 0x10000 - ($ - $$) db 0
`,
  );
  const r = spawnSync('nasm', ['-f', 'bin', src, '-o', bin], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nasm failed: ${r.stderr}`);
  return bin;
}

test('virtio devices appear on PCI slots from 00:03.0 in the order given, with modern ids', () => {
  const share = join(dir, 'share');
  mkdirSync(share);
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, new Uint8Array(1 << 20));
  const con = join(dir, 'con.txt');
  const r = tsvm('run', '-bios', pciScanRom(), '-m', '16M', '-debugcon', `file:${con}`, '-device', 'virtio-rng-pci', '-drive', `file=${disk},if=virtio`, '-virtfs', `local,path=${share},mount_tag=s,security_model=none`);
  assert.equal(r.code, 0, r.err);
  // -drive devices come first, then -device, then -virtfs; the fourth slot is empty
  assert.equal(readFileSync(con, 'utf8'), '10421AF4\n10441AF4\n10491AF4\nFFFFFFFF\n');
});

test('bad virtio options are refused before the VM starts, saying what to write', () => {
  const cases: [string[], RegExp][] = [
    [['-virtfs', `local,path=${join(dir, 'nope')},mount_tag=x,security_model=none`], /no such directory/],
    [['-virtfs', `local,path=${dir},mount_tag=x,security_model=mapped-xattr`], /use security_model=none/],
    [['-virtfs', `local,path=${dir}`], /needs path=DIR and mount_tag=TAG/],
    [['-device', 'virtio-gpu-pci'], /'virtio-gpu-pci' is not known; the devices are: e1000, virtio-net-pci, ne2k_pci, virtio-rng-pci/],
    [['-device', 'virtconsole,chardev=c9'], /no -chardev with id=c9/],
    [['-drive', `file=${join(dir, 'missing.img')},if=virtio`], /missing\.img/],
    [['-drive', `file=${join(dir, 'x')},if=scsi`], /if=scsi is not supported; tsvm has if=ide and if=virtio/],
    [['-drive', `file=${join(dir, 'x')},if=virtio,format=vmdk`], /format=vmdk is not supported; tsvm reads raw and qcow2/],
    [['-device', 'virtio-rng-pci,bogus=1'], /property 'bogus' is not known/],
    [['-chardev', `socket,id=c,path=${join(dir, 's.sock')},server=on`], /write server=on,wait=off/],
    [['-device', 'virtconsole,chardev=c', '-chardev', `socket,id=c,path=${join(dir, 'disk.img')},server=on,wait=off`], /exists and is not a socket/],
    [['-chardev', `pty,id=c`], /type 'pty' is not supported/],
  ];
  const bios = pciScanRom();
  for (const [args, re] of cases) {
    const r = tsvm('run', '-bios', bios, ...args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit status`);
    assert.match(r.err, re, args.join(' '));
  }
});

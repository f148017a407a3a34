// The PC booted by Debian's SeaBIOS, as a user runs it: the tsvm CLI with
// QEMU's options, media built here from Debian packages, the screen read
// back through -screendump. Guest time is bounded with -run-for, so a slow
// host only makes a test take longer, never fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-boot-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, 'run', ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function screen(name: string): string {
  return readFileSync(join(dir, name), 'utf8');
}

test('SeaBIOS boots: banner on the debug console and the screen; no bootable device is reported', () => {
  const r = tsvm('-bios', '/usr/share/seabios/bios-256k.bin', '-m', '32M', '-serial', 'none', '-debugcon', `file:${join(dir, 'seabios.log')}`, '-screendump', join(dir, 'seabios.txt'), '-run-for', '5');
  assert.equal(r.code, 0, r.err);
  const log = screen('seabios.log');
  assert.match(log, /SeaBIOS \(version 1\.\d+/);
  assert.match(log, /Found QEMU fw_cfg/);
  assert.match(log, /Running option rom at c000:0003/); // the VGA BIOS
  const s = screen('seabios.txt');
  assert.match(s, /^SeaBIOS \(version /m);
  assert.match(s, /No bootable device/);
});

test('a GRUB rescue CD (grub-mkrescue) boots to the GRUB prompt; the screen also dumps as PNG', () => {
  const iso = join(dir, 'grub.iso');
  const empty = join(dir, 'grub-root');
  mkdirSync(empty);
  const mk = spawnSync('grub-mkrescue', ['-o', iso, empty], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `grub-mkrescue failed (packages grub-pc-bin, xorriso, mtools): ${mk.stderr}`);
  const r = tsvm('-cdrom', iso, '-boot', 'd', '-serial', 'none', '-screendump', join(dir, 'grub.txt'), '-run-for', '2');
  assert.equal(r.code, 0, r.err);
  const s = screen('grub.txt');
  assert.match(s, /GNU GRUB {2}version 2\./);
  assert.match(s, /^grub> *$/m);

  const png = join(dir, 'grub.png');
  const p = tsvm('-cdrom', iso, '-boot', 'd', '-serial', 'none', '-screendump', png, '-run-for', '2');
  assert.equal(p.code, 0, p.err);
  const img = readFileSync(png);
  assert.equal(img.subarray(1, 4).toString('latin1'), 'PNG');
  const width = img.readUInt32BE(16);
  const height = img.readUInt32BE(20);
  assert.deepEqual([width, height], [720, 400]); // 80x25 text with 9x16 cells
  // the image is not blank: some pixels differ from the first
  let off = 8;
  const idat: Buffer[] = [];
  while (off + 8 <= img.length) {
    const len = img.readUInt32BE(off);
    if (img.subarray(off + 4, off + 8).toString('latin1') === 'IDAT') idat.push(img.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const first = raw.readUInt32BE(1);
  let differing = 0;
  for (let i = 1; i + 4 <= raw.length; i += 4) if (raw.readUInt32BE(i) !== first) differing++;
  assert.ok(differing > 1000, `the PNG looks blank (${differing} pixels differ)`);
});

test('an isolinux CD boots to its prompt', () => {
  const root = join(dir, 'iso-root');
  mkdirSync(join(root, 'isolinux'), { recursive: true });
  for (const [from, to] of [
    ['/usr/lib/ISOLINUX/isolinux.bin', 'isolinux.bin'],
    ['/usr/lib/syslinux/modules/bios/ldlinux.c32', 'ldlinux.c32'],
  ]) {
    assert.ok(existsSync(from), `${from} is missing (packages isolinux, syslinux-common)`);
    copyFileSync(from, join(root, 'isolinux', to));
  }
  writeFileSync(join(root, 'isolinux', 'isolinux.cfg'), 'SAY tsvm isolinux test\nPROMPT 1\nTIMEOUT 0\nDEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n');
  const iso = join(dir, 'isolinux.iso');
  const mk = spawnSync(
    'xorriso',
    ['-as', 'mkisofs', '-quiet', '-o', iso, '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', root],
    { encoding: 'utf8' },
  );
  assert.equal(mk.status, 0, `xorriso failed: ${mk.stderr}`);
  const r = tsvm('-cdrom', iso, '-boot', 'd', '-serial', 'none', '-screendump', join(dir, 'isolinux.txt'), '-run-for', '3');
  assert.equal(r.code, 0, r.err);
  const s = screen('isolinux.txt');
  assert.match(s, /ISOLINUX \d+\.\d+/);
  assert.match(s, /tsvm isolinux test/);
  assert.match(s, /^boot: *$/m);
});

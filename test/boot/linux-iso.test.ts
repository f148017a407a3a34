// Linux booted the PC way: the default guest's kernel and initramfs on an
// isolinux CD (built here with xorriso), found by SeaBIOS, loaded by
// isolinux, with the console on the serial port, to the shell prompt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');

test('the default kernel boots from an isolinux CD through SeaBIOS to a shell', { timeout: 2_400_000 }, async () => {
  // make sure the default image exists (builds it on first use)
  const info = spawnSync(process.execPath, [TSVM, 'image', 'info'], { encoding: 'utf8' });
  if (info.status !== 0) {
    const b = spawnSync(process.execPath, [TSVM, 'image', 'build'], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
  }
  const dirLine = /directory: (.*)/.exec(spawnSync(process.execPath, [TSVM, 'image', 'info'], { encoding: 'utf8' }).stdout);
  assert.ok(dirLine, 'tsvm image info names the image directory');
  const img = dirLine[1].trim();

  const dir = mkdtempSync(join(tmpdir(), 'tsvm-liso-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'isolinux'), { recursive: true });
  copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(root, 'isolinux', 'isolinux.bin'));
  copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(root, 'isolinux', 'ldlinux.c32'));
  copyFileSync(join(img, 'bzImage'), join(root, 'vmlinuz'));
  copyFileSync(join(img, 'initrd.img'), join(root, 'initrd.img'));
  writeFileSync(join(root, 'isolinux', 'isolinux.cfg'), 'DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img console=ttyS0\n');
  const iso = join(dir, 'linux.iso');
  const mk = spawnSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', iso, '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', root], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);

  const child = spawn(process.execPath, [TSVM, 'run', '-cdrom', iso, '-boot', 'd', '-m', '256M', '-timeout', '2000'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  try {
    const deadline = Date.now() + 1_800_000;
    while (!/(^|\n)tsvm:[^\n]*# /.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`no shell prompt; output:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.match(out, /Linux version 6\.\d+/);
    assert.match(out, /Kernel command line: .*console=ttyS0/);
    assert.match(out, /ACPI: RSDP 0x[0-9A-F]+/); // SeaBIOS built the ACPI tables
    assert.match(out, /tsvm default guest ready/);
    // power-off through the ACPI tables SeaBIOS built (its DSDT's \\_S5 and the PIIX4 PM block)
    const before = out.length;
    child.stdin.write('poweroff\n');
    const timer = setTimeout(() => child.kill(), 600_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, `tsvm exits 0 when the guest powers off; output:\n${out.slice(before - 200)}`);
    assert.match(out.slice(before), /reboot: Power down/);
  } finally {
    child.kill();
  }
});

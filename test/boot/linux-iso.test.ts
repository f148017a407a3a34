// Linux booted the PC way: the default guest's kernel and initramfs on an
// isolinux CD (built here with xorriso), found by SeaBIOS, loaded by
// isolinux, with the console on the serial port, to the shell prompt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, TsvmChild } from '../helpers/child.js';

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

  const s = new TsvmChild(['run', '-cdrom', iso, '-boot', 'd', '-m', '256M', '-timeout', '2000']);
  try {
    await s.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(s.out, /Linux version 6\.\d+/);
    assert.match(s.out, /Kernel command line: .*console=ttyS0/);
    assert.match(s.out, /ACPI: RSDP 0x[0-9A-F]+/); // SeaBIOS built the ACPI tables
    assert.match(s.out, /tsvm default guest ready/);
    // power-off through the ACPI tables SeaBIOS built (its DSDT's \\_S5 and the PIIX4 PM block)
    const before = s.out.length;
    s.child.stdin.write('poweroff\n');
    const code = await s.exit();
    assert.equal(code, 0, `tsvm exits 0 when the guest powers off (it ended with ${s.exitDescription}); output:\n${s.out.slice(before - 200)}`);
    assert.match(s.out.slice(before), /reboot: Power down/);
  } finally {
    s.kill();
  }
});

// Linux booted the PC way: the default guest's kernel and initramfs on an
// isolinux CD (built here with xorriso), found by SeaBIOS, loaded by
// isolinux, with the console on the serial port, to the shell prompt; as a
// user of an ISO does it: tsvm create --cdrom (a VM folder with an empty
// IDE disk), tsvm start, savevm, loadvm, and a revert of the stopped VM,
// each seen in RAM (the initramfs root) and on the disk; a branch; a linked
// clone at the other branch and a full clone moved to another directory,
// each started (resuming its saved state) and seen to hold its own marks;
// qemu-img check on every image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, TsvmChild } from '../helpers/child.js';

test('the default kernel boots from an isolinux CD through SeaBIOS to a shell, in a VM created from the ISO, with snapshots, a branch, linked and full clones and a moved folder', { timeout: 2_400_000 }, async () => {
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

  const vms = join(dir, 'vms');
  const tsvm = (...args: string[]) => spawnSync(process.execPath, [TSVM, ...args, '--dir', vms], { encoding: 'utf8', timeout: 120_000 });
  mkdirSync(vms);
  const c = tsvm('create', 'liso', '-cdrom', iso, '-boot', 'd', '-m', '256M');
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /disk disks\/hda\.qcow2\)/);
  const vm = join(vms, 'liso.tsvm');
  // a mark in RAM and one on the disk (/dev/sda), read back past the page cache
  const mark = (n: string) => `echo ram-${n} > /root/mark; echo disk-${n} > /dev/sda; sync`;
  const marks = async (t: TsvmChild) => {
    // what follows the line M-2 (the echoed command line reads M-$((1+1)))
    const out = await t.shell('echo M-$((1+1)); cat /root/mark; echo 3 > /proc/sys/vm/drop_caches; head -n 1 /dev/sda');
    const at = out.indexOf('\nM-2\n');
    assert.ok(at >= 0, `no M-2 line in:\n${out}`);
    // (less the kernel's console line about drop_caches)
    return out
      .slice(at + 5)
      .split('\n')
      .filter((l) => l && !/^\[\s*\d+\.\d+\] /.test(l))
      .join(' ');
  };

  const b = new TsvmChild(['start', vm, '-timeout', '2000']);
  try {
    await b.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(b.out, /Linux version 6\.\d+/);
    assert.match(b.out, /Kernel command line: .*console=ttyS0/);
    assert.match(b.out, /ACPI: RSDP 0x[0-9A-F]+/); // SeaBIOS built the ACPI tables
    assert.match(b.out, /tsvm default guest ready/);
    await b.shell(mark('one'));
    assert.match(await b.monitor('savevm one', /snapshot one saved|savevm:.*/), /snapshot one saved/);
    await b.shell(mark('two'));
    assert.equal(await marks(b), 'ram-two disk-two');
    assert.match(await b.monitor('savevm two', /snapshot two saved|savevm:.*/), /snapshot two saved/);
    assert.match(await b.monitor('loadvm one', /back at snapshot one|loadvm:.*/), /back at snapshot one/);
    assert.equal(await marks(b), 'ram-one disk-one');
    await b.shell(mark('three'));
    b.child.stdin.write('\x01x');
    assert.equal(await b.exit(300_000), 0, b.tail());
  } finally {
    b.kill();
  }
  // the stopped VM back at one: the next start resumes there, with the disk as it was
  const rev = tsvm('snapshot', 'liso', 'revert', 'one');
  assert.equal(rev.status, 0, rev.stderr);
  assert.match(rev.stdout, /back at snapshot one; tsvm start liso resumes there/);

  const s = new TsvmChild(['start', vm, '-timeout', '900']);
  try {
    assert.equal(await marks(s), 'ram-one disk-one');
    // a branch from one beside two
    await s.shell(mark('four'));
    assert.match(await s.monitor('savevm four', /snapshot four saved|savevm:.*/), /snapshot four saved/);
    assert.match(await s.monitor('info snapshots', /you are here/), /one .*\r?\n\s*\|- two .*\r?\n\s*`- four .*<- you are here/);
    const before = s.out.length;
    s.child.stdin.write('\x01cquit --save\r');
    assert.equal(await s.exit(300_000), 0, `quit --save did not end tsvm with status 0:\n${s.out.slice(before)}`);
  } finally {
    s.kill();
  }

  // a linked clone at the other branch resumes there, with that branch's disk; it writes a mark of its own
  const lc = tsvm('clone', '--linked', 'liso', 'lc', '--snapshot', 'two');
  assert.equal(lc.status, 0, lc.stderr);
  const l = new TsvmChild(['start', join(vms, 'lc.tsvm'), '-timeout', '900']);
  try {
    assert.equal(await marks(l), 'ram-two disk-two');
    await l.shell(mark('five'));
    assert.equal(await marks(l), 'ram-five disk-five');
    l.child.stdin.write('\x01x');
    assert.equal(await l.exit(300_000), 0, l.tail());
  } finally {
    l.kill();
  }

  // a full clone, moved to another directory, resumes where liso was suspended (four, not the clone's five)
  const fc = tsvm('clone', 'liso', 'full');
  assert.equal(fc.status, 0, fc.stderr);
  mkdirSync(join(dir, 'elsewhere'));
  const full = join(dir, 'elsewhere', 'full.tsvm');
  renameSync(join(vms, 'full.tsvm'), full);
  const f = new TsvmChild(['start', full, '-timeout', '900']);
  try {
    assert.equal(await marks(f), 'ram-four disk-four');
    // power-off through the ACPI tables SeaBIOS built (its DSDT's \\_S5 and the PIIX4 PM block)
    const before = f.out.length;
    f.child.stdin.write('poweroff\n');
    const code = await f.exit();
    assert.equal(code, 0, `tsvm exits 0 when the guest powers off (it ended with ${f.exitDescription}); output:\n${f.out.slice(before - 200)}`);
    assert.match(f.out.slice(before), /reboot: Power down/);
  } finally {
    f.kill();
  }

  // every image tsvm wrote passes qemu-img check, and each disk's backing chain opens
  for (const folder of [vm, join(vms, 'lc.tsvm'), full]) {
    for (const sub of ['disks', 'snapshots']) {
      for (const img of readdirSync(join(folder, sub)).filter((n) => n.endsWith('.qcow2'))) {
        const r = spawnSync('qemu-img', ['check', '-q', join(folder, sub, img)], { encoding: 'utf8' });
        assert.equal(r.status, 0, `qemu-img check ${folder}/${sub}/${img}: ${r.stdout}${r.stderr}`);
        const i = spawnSync('qemu-img', ['info', '--backing-chain', join(folder, sub, img)], { encoding: 'utf8' });
        assert.equal(i.status, 0, `qemu-img info --backing-chain ${folder}/${sub}/${img}: ${i.stderr}`);
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

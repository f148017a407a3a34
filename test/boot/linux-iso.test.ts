// Linux booted the PC way: the default guest's kernel and initramfs on an
// isolinux CD (built here with xorriso), found by SeaBIOS, loaded by
// isolinux, with the console on the serial port, to the shell prompt; as a
// user of an ISO does it: tsvm create --cdrom (a VM folder with an empty
// IDE disk), tsvm start, savevm, loadvm, and a revert of the stopped VM,
// each seen in RAM (the initramfs root) and on the disk; a branch; a linked
// clone at the other branch and a full clone moved to another directory,
// each started (resuming its saved state) and seen to hold its own marks;
// then each clone booted cold (firmware, SeaBIOS, isolinux from the clone's
// own CD, the kernel, the shell) on its own disk: the linked clone by a
// plain start (its resumed state is gone) while the source's CD is moved
// aside, the moved full clone by tsvm start --force-boot, which discards the
// state it was suspended with; qemu-img check on every image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, linesAfter, TsvmChild } from '../helpers/child.js';

test('the default kernel boots from an isolinux CD through SeaBIOS to a shell, in a VM created from the ISO, with snapshots, a branch, linked and full clones and a moved folder, the clones booted cold', { timeout: 3_000_000 }, async () => {
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
  // cryptomgr.notests as in the default guest's command line: the kernel's crypto self-tests cost a minute per boot here
  writeFileSync(join(root, 'isolinux', 'isolinux.cfg'), 'DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img console=ttyS0 cryptomgr.notests\n');
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
    return linesAfter(out, 'M-2');
  };

  // the IDE disk is there as a block device (were it missing, the marks would go to a plain file /dev/sda in RAM);
  // the shell may come up before the kernel's ATA probe has named it: wait for it (at most a minute)
  const haveDisk = async (t: TsvmChild) => {
    const sda = await t.shell('for i in $(seq 60); do [ -b /dev/sda ] && break; sleep 1; done; ls -l /dev/sda; ls /sys/bus/pci/devices | tr "\\n" " "; echo');
    assert.match(sda, /^b[^\n]* \/dev\/sda$/m, `no block device /dev/sda a minute after the prompt (the PCI devices are listed after it):\n${sda}`);
  };
  // what /root/mark reads after a cold boot: the initramfs starts afresh
  const NO_MARK = "cat: can't open '/root/mark': No such file or directory";
  // a cold boot to the shell: SeaBIOS (its ACPI tables), isolinux (it adds BOOT_IMAGE= to its APPEND line), the kernel
  const coldBoot = async (t: TsvmChild, what: string) => {
    await t.waitFor(PROMPT, 0, 1_800_000, what);
    assert.match(t.out, /ACPI: RSDP 0x[0-9A-F]+/);
    assert.match(t.out, /Kernel command line: (?=[^\n]*BOOT_IMAGE=\/vmlinuz)[^\n]*initrd=\/initrd\.img console=ttyS0/);
    assert.match(t.out, /tsvm default guest ready/);
    await haveDisk(t);
  };
  // power-off through the ACPI tables SeaBIOS built (its DSDT's \\_S5 and the PIIX4 PM block)
  const poweroff = async (t: TsvmChild, what: string) => {
    const before = t.out.length;
    t.child.stdin.write('poweroff\n');
    const code = await t.exit();
    assert.equal(code, 0, `tsvm exits 0 when ${what} powers off (it ended with ${t.exitDescription}); output:\n${t.out.slice(before - 200)}`);
    assert.match(t.out.slice(before), /reboot: Power down/);
  };

  const b = new TsvmChild(['start', vm, '-timeout', '2000']);
  try {
    await b.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(b.out, /Linux version 6\.\d+/);
    assert.match(b.out, /Kernel command line: .*console=ttyS0/);
    assert.match(b.out, /ACPI: RSDP 0x[0-9A-F]+/); // SeaBIOS built the ACPI tables
    assert.match(b.out, /tsvm default guest ready/);
    await haveDisk(b);
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
  assert.match(tsvm('list').stdout, /\nlc\s+stopped/);
  // the linked clone boots cold from its own CD (liso's copy moved aside meanwhile) and its own disk over liso's snapshot
  const lcSpec = JSON.parse(readFileSync(join(vms, 'lc.tsvm', 'vm.json'), 'utf8')) as { spec: { drives: { cdrom: { file: string } } } };
  const lisoSpec = JSON.parse(readFileSync(join(vm, 'vm.json'), 'utf8')) as { spec: { drives: { cdrom: { file: string } } } };
  assert.ok(existsSync(join(vms, 'lc.tsvm', lcSpec.spec.drives.cdrom.file)), "the linked clone's CD is in its own folder");
  const lisoCd = join(vm, lisoSpec.spec.drives.cdrom.file);
  renameSync(lisoCd, lisoCd + '.aside');
  const lb = new TsvmChild(['start', join(vms, 'lc.tsvm'), '-timeout', '2000']);
  try {
    await coldBoot(lb, "the linked clone's shell prompt after a cold boot");
    assert.equal(await marks(lb), `${NO_MARK} disk-five`);
    await poweroff(lb, 'the cold-booted linked clone');
  } finally {
    lb.kill();
    renameSync(lisoCd + '.aside', lisoCd);
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
    await f.shell(mark('six'));
    const before = f.out.length;
    f.child.stdin.write('\x01cquit --save\r');
    assert.equal(await f.exit(300_000), 0, `quit --save did not end tsvm with status 0:\n${f.out.slice(before)}`);
  } finally {
    f.kill();
  }
  const elsewhere = (...args: string[]) => spawnSync(process.execPath, [TSVM, ...args, '--dir', join(dir, 'elsewhere')], { encoding: 'utf8', timeout: 120_000 });
  assert.match(elsewhere('list').stdout, /\nfull\s+suspended/);
  // the moved full clone booted cold with --force-boot: its suspended state (ram-six) discarded, its disk (disk-six) kept
  const fb = new TsvmChild(['start', full, '--force-boot', '-timeout', '2000']);
  try {
    await fb.waitFor(/discarded full's suspended state; booting it afresh/, 0, 120_000, 'the note that the suspended state is discarded');
    await coldBoot(fb, "the moved full clone's shell prompt after tsvm start --force-boot");
    assert.equal(await marks(fb), `${NO_MARK} disk-six`);
    await poweroff(fb, 'the cold-booted full clone');
  } finally {
    fb.kill();
  }
  assert.match(elsewhere('list').stdout, /\nfull\s+stopped/);
  assert.match(readFileSync(join(full, 'vm.log'), 'utf8'), /suspended state discarded \(--force-boot\)/);

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

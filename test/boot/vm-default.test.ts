// A VM folder of the default guest, driven through the CLI as a user does:
// tsvm create gives it a data disk on virtio-blk (the guest formats it at
// its first boot and mounts it on /data) and a virtio-net NIC (DHCP at
// boot). The VM boots once, then resumes saved states: files written on
// /data, savevm, more files, loadvm (the first file and not the second), a
// branch, the tree; revert of the stopped VM; a full clone moved to another
// directory, started there (resuming), written to, powered off and booted
// cold in its new place (its own kernel, initrd and disk); a linked clone
// started, written to and powered off, then booted cold from its own disk. The
// host then reads the disks with qemu-img and debugfs (what each disk
// holds, and qemu-img check on every image).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, TsvmChild } from '../helpers/child.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-vmdef-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args, '--dir', dir], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function tool(cmd: string, ...args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

/** The names in the root of the ext2 file system on a qcow2 disk, read on the host (qemu-img to raw, then debugfs). */
function filesOnDisk(qcow2: string): string[] {
  const raw = join(dir, 'look.raw');
  tool('qemu-img', 'convert', '-O', 'raw', qcow2, raw);
  const ls = tool('debugfs', '-R', 'ls -p /', raw);
  rmSync(raw);
  return ls
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n) => n && n !== '.' && n !== '..' && n !== 'lost+found');
}

/** `ls /data` in the guest, as a list of names: read from the disk (the page cache dropped first). */
async function lsData(vm: TsvmChild): Promise<string[]> {
  // the names follow the line LS-2 (not the echoed command line, which reads LS-$((1+1)))
  const out = await vm.shell('echo 3 > /proc/sys/vm/drop_caches; echo LS-$((1+1)); ls /data | cat');
  const at = out.indexOf('\nLS-2\n');
  assert.ok(at >= 0, `no LS-2 line in:\n${out}`);
  // (less the kernel's console line about drop_caches)
  return out
    .slice(at + 6)
    .split('\n')
    .filter((l) => !/^\[\s*\d+\.\d+\] /.test(l))
    .join(' ')
    .split(/\s+/)
    .filter((n) => n && n !== 'lost+found');
}

test('a created VM of the default guest: /data on virtio-blk, DHCP, snapshots, revert, branch, clones, moved folder booted cold', { timeout: 3_000_000 }, async () => {
  const c = tsvm('create', 'box');
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /disk disks\/vda\.qcow2 on virtio-blk, virtio-net-pci NIC on the user-mode network/);
  const box = join(dir, 'box.tsvm');
  assert.match(tool('qemu-img', 'info', join(box, 'disks', 'vda.qcow2')), /virtual size: 1 GiB/);

  // the one boot: the guest makes the file system itself and mounts it; eth0 gets its address by DHCP
  const vm = new TsvmChild(['start', box, '-timeout', '2000']);
  try {
    await vm.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(vm.out, /network: eth0 10\.0\.2\.15 via 10\.0\.2\.2, DNS 10\.0\.2\.3/);
    assert.match(vm.out, /data disk: \/dev\/vda is blank; making an ext2 file system on it/);
    assert.match(vm.out, /data disk: \/dev\/vda mounted on \/data \(new file system\)/);
    assert.match(await vm.shell('mount | grep /data'), /\/dev\/vda on \/data type ext2 \(rw/);
    assert.match(await vm.shell('ls /sys/bus/virtio/drivers/virtio_net/'), /virtio\d/);

    await vm.shell('echo alpha-text > /data/first.txt; sync');
    assert.match(await vm.monitor('savevm one', /snapshot one saved|savevm:.*/), /snapshot one saved/);
    await vm.shell('echo beta-text > /data/second.txt; sync');
    assert.deepEqual((await lsData(vm)).sort(), ['first.txt', 'second.txt']);
    assert.match(await vm.monitor('savevm two', /snapshot two saved|savevm:.*/), /snapshot two saved/);

    // back to one: the first file, not the second
    assert.match(await vm.monitor('loadvm one', /back at snapshot one|loadvm:.*/), /back at snapshot one/);
    assert.deepEqual(await lsData(vm), ['first.txt']);
    assert.match(await vm.shell('cat /data/first.txt'), /^alpha-text$/m);
    // a branch from one
    await vm.shell('echo gamma-text > /data/branch.txt; sync');
    assert.match(await vm.monitor('savevm branch', /snapshot branch saved|savevm:.*/), /snapshot branch saved/);
    const tree = await vm.monitor('info snapshots', /you are here/);
    assert.match(tree, /one .*\r?\n\s*\|- two .*\r?\n\s*`- branch .*<- you are here/);
    const before = vm.out.length;
    vm.child.stdin.write('\x01cquit --save\r');
    assert.equal(await vm.exit(300_000), 0, `quit --save did not end tsvm with status 0:\n${vm.out.slice(before)}`);
  } finally {
    vm.kill();
  }

  // revert the stopped VM to the other branch: the next start resumes there, with its disk
  const rev = tsvm('snapshot', 'box', 'revert', 'two');
  assert.equal(rev.code, 0, rev.err);
  assert.match(rev.out, /back at snapshot two; tsvm start box resumes there/);
  assert.match(tsvm('snapshot', 'box', 'list').out, /\|- two .*<- you are here/);
  const r = new TsvmChild(['start', box, '-timeout', '900']);
  try {
    assert.deepEqual((await lsData(r)).sort(), ['first.txt', 'second.txt']);
    assert.match(await r.shell('cat /data/second.txt'), /^beta-text$/m);
    r.child.stdin.write('\x01cquit --save\r');
    assert.equal(await r.exit(300_000), 0, r.tail());
  } finally {
    r.kill();
  }

  // a full clone, moved to another directory, starts there (resuming the state it copied)
  const fc = tsvm('clone', 'box', 'full');
  assert.equal(fc.code, 0, fc.err);
  mkdirSync(join(dir, 'elsewhere'));
  renameSync(join(dir, 'full.tsvm'), join(dir, 'elsewhere', 'full.tsvm'));
  const f = new TsvmChild(['start', join(dir, 'elsewhere', 'full.tsvm'), '-timeout', '900']);
  try {
    assert.match(await f.shell('cat /data/first.txt /data/second.txt'), /^alpha-text\nbeta-text$/m);
    await f.shell('echo moved-text > /data/moved.txt; sync');
    const before = f.out.length;
    f.child.stdin.write('poweroff\n');
    assert.equal(await f.exit(300_000), 0, `the moved full clone did not power off cleanly:\n${f.out.slice(before)}`);
  } finally {
    f.kill();
  }
  // powered off, the moved folder boots cold where it is now: its own kernel and initrd (boot/), its own disk
  const fb = new TsvmChild(['start', join(dir, 'elsewhere', 'full.tsvm'), '-timeout', '2000']);
  try {
    await fb.waitFor(PROMPT, 0, 1_800_000, "the moved folder's shell prompt after a cold boot");
    assert.match(fb.out, /Linux version 6\.\d+/);
    assert.match(fb.out, /data disk: \/dev\/vda mounted on \/data/);
    assert.doesNotMatch(fb.out, /data disk: \/dev\/vda is blank/);
    assert.deepEqual((await lsData(fb)).sort(), ['first.txt', 'moved.txt', 'second.txt']);
    assert.match(await fb.shell('cat /data/moved.txt'), /^moved-text$/m);
    const before = fb.out.length;
    fb.child.stdin.write('poweroff\n');
    assert.equal(await fb.exit(300_000), 0, `the cold-booted moved folder did not power off cleanly:\n${fb.out.slice(before)}`);
  } finally {
    fb.kill();
  }
  assert.match(spawnSync(process.execPath, [TSVM, 'list', '--dir', join(dir, 'elsewhere')], { encoding: 'utf8' }).stdout, /\nfull\s+stopped/);

  // a linked clone: overlays over a new snapshot of box; it writes a file of its own and powers off
  const lc = tsvm('clone', '--linked', 'box', 'lc');
  assert.equal(lc.code, 0, lc.err);
  assert.match(lc.out, /linked clone .*lc\.tsvm of box at snapshot clone-lc/);
  const l = new TsvmChild(['start', join(dir, 'lc.tsvm'), '-timeout', '900']);
  try {
    assert.match(await l.shell('cat /data/second.txt'), /^beta-text$/m);
    await l.shell('echo delta-text > /data/lc.txt; sync');
    const before = l.out.length;
    l.child.stdin.write('poweroff\n');
    assert.equal(await l.exit(300_000), 0, `the linked clone did not power off cleanly:\n${l.out.slice(before)}`);
  } finally {
    l.kill();
  }
  // powered off, the linked clone boots cold: its kernel and initrd (hard links to box's) and its own disk over box's snapshot
  const lb = new TsvmChild(['start', join(dir, 'lc.tsvm'), '-timeout', '2000']);
  try {
    await lb.waitFor(PROMPT, 0, 1_800_000, "the linked clone's shell prompt after a cold boot");
    assert.match(lb.out, /Linux version 6\.\d+/);
    assert.match(lb.out, /data disk: \/dev\/vda mounted on \/data/);
    assert.doesNotMatch(lb.out, /data disk: \/dev\/vda is blank/);
    assert.deepEqual((await lsData(lb)).sort(), ['first.txt', 'lc.txt', 'second.txt']);
    const before = lb.out.length;
    lb.child.stdin.write('poweroff\n');
    assert.equal(await lb.exit(300_000), 0, `the cold-booted linked clone did not power off cleanly:\n${lb.out.slice(before)}`);
  } finally {
    lb.kill();
  }
  assert.match(tsvm('snapshot', 'box', 'delete', 'clone-lc').err, /shared with the linked clone lc/);
  assert.match(tsvm('list').out, /box\s+suspended[\s\S]*lc\s+stopped/);

  // the host's view: each disk holds what its guest wrote, and every image passes qemu-img check
  assert.deepEqual(filesOnDisk(join(dir, 'lc.tsvm', 'disks', 'vda.qcow2')).sort(), ['first.txt', 'lc.txt', 'second.txt']);
  assert.deepEqual(filesOnDisk(join(box, 'disks', 'vda.qcow2')).sort(), ['first.txt', 'second.txt']);
  // the branch went on from one's disk (loadvm put a new overlay behind the running virtio-blk device)
  const tree = JSON.parse(readFileSync(join(box, 'snapshots', 'tree.json'), 'utf8')) as { snapshots: { id: string; name: string }[] };
  const branch = tree.snapshots.find((n) => n.name === 'branch');
  assert.ok(branch, 'tree.json names the branch');
  assert.deepEqual(filesOnDisk(join(box, 'snapshots', `${branch.id}.vda.qcow2`)).sort(), ['branch.txt', 'first.txt']);
  for (const folder of [box, join(dir, 'lc.tsvm'), join(dir, 'elsewhere', 'full.tsvm')]) {
    for (const sub of ['disks', 'snapshots']) {
      for (const img of readdirSync(join(folder, sub)).filter((n) => n.endsWith('.qcow2'))) tool('qemu-img', 'check', '-q', join(folder, sub, img));
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

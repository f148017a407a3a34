// VM folder bookkeeping without running a guest: the tree after save,
// revert and delete; a revert interrupted by a kill is finished by the next
// lock; a stale lock is taken over; a folder copied elsewhere opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBlockFile } from '../host/node/block.js';
import { formatTree, VmFolder } from './folder.js';
import { defaultSpec } from './spec.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-folder-'));
const rom = join(dir, 'rom.bin');
writeFileSync(rom, Buffer.alloc(65536, 0xf4));

function make(name: string): VmFolder {
  return VmFolder.create(join(dir, `${name}.tsvm`), name, defaultSpec({ bios: rom, vgaBios: null, memoryBytes: 1 << 20 }), { hda: 1 << 20 });
}

/** The disk's contents as the guest sees them (through the qcow2 overlay chain). */
function disk(vm: VmFolder): Buffer {
  const o = openBlockFile(join(vm.path, 'disks', 'hda.qcow2'), 'ro', 'hda', 'qcow2');
  const b = Buffer.alloc(1 << 20);
  o.backend.read(0, b);
  o.close();
  return b;
}

/** Write the disk as a guest would (the current overlay). */
function writeDisk(vm: VmFolder, data: Buffer): void {
  const o = openBlockFile(join(vm.path, 'disks', 'hda.qcow2'), 'rw', 'hda', 'qcow2');
  o.backend.write(0, data);
  o.close();
}

test('save, revert and delete keep a tree and the current position', () => {
  const vm = make('tree');
  vm.lock();
  writeDisk(vm, Buffer.alloc(1 << 20, 1));
  vm.saveSnapshot('a', 'first', null);
  writeDisk(vm, Buffer.alloc(1 << 20, 2));
  vm.saveSnapshot('b', '', null);
  vm.revert('a', null);
  assert.equal(disk(vm)[0], 1);
  writeDisk(vm, Buffer.alloc(1 << 20, 3));
  vm.saveSnapshot('c', '', null);
  const t = vm.tree();
  assert.equal(t.snapshots.find((s) => s.name === 'c')?.parent, t.snapshots.find((s) => s.name === 'a')?.id);
  assert.match(formatTree(t), /^a .*first\n\|- b .*\n`- c .*<- you are here$/);
  assert.throws(() => vm.saveSnapshot('a', '', null), /already has a snapshot 'a'/);
  vm.deleteSnapshot('a');
  assert.deepEqual(vm.tree().snapshots.map((s) => s.parent), [null, null]);
  vm.revert('b', null);
  assert.equal(disk(vm)[0], 2);
  vm.unlock();
});

test('a revert cut short by a kill is finished by the next lock', () => {
  const vm = make('killed');
  vm.lock();
  writeDisk(vm, Buffer.alloc(1 << 20, 7));
  vm.saveSnapshot('good', '', null);
  // what a process killed in the middle of a revert leaves: the marker set, the old overlay (written since) still in place
  const t = vm.tree();
  t.reverting = t.snapshots[0].id;
  writeFileSync(join(vm.path, 'snapshots', 'tree.json'), JSON.stringify(t));
  const half = Buffer.alloc(1 << 20, 9);
  half.fill(7, 0, 1000);
  writeDisk(vm, half);
  // and its lock, held by a pid that no longer exists
  writeFileSync(join(vm.path, 'lock'), '999999999\n');
  vm.unlock();
  const again = VmFolder.open(vm.path);
  again.lock();
  assert.ok(disk(again).every((b) => b === 7), 'the disk is the snapshot\'s again');
  assert.equal(again.tree().reverting, null);
  assert.match(readFileSync(join(vm.path, 'vm.log'), 'utf8'), /finished an interrupted revert to good/);
  assert.throws(() => VmFolder.open(vm.path).lock(), /in use by another tsvm process/);
  again.unlock();
});

test('a copied folder opens and keeps its snapshots', () => {
  const vm = make('orig');
  vm.lock();
  vm.saveSnapshot('s', '', null);
  vm.unlock();
  cpSync(vm.path, join(dir, 'elsewhere', 'orig.tsvm'), { recursive: true });
  const copy = VmFolder.open(join(dir, 'elsewhere', 'orig.tsvm'));
  assert.equal(copy.tree().snapshots[0].name, 's');
  assert.equal(copy.spec.bios, 'boot/rom.bin');
});

test('fuzz: flipped and truncated bytes of vm.json are refused with VmFolderError or read as a valid config', () => {
  const vm = make('fuzz');
  const cfgPath = join(vm.path, 'vm.json');
  const good = readFileSync(cfgPath);
  let x = 0x12345678;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  let refused = 0;
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(good);
    const bad = i % 4 === 0 ? b.subarray(0, rnd(b.length)) : b;
    if (i % 4 !== 0) for (let k = 0; k <= rnd(3); k++) bad[rnd(bad.length)] = rnd(256);
    writeFileSync(cfgPath, bad);
    try {
      const v = VmFolder.open(vm.path);
      // accepted: then it is a valid config whose files stay inside the folder
      for (const p of [v.spec.bios, v.spec.drives.hda?.file]) if (p && p !== 'seabios') assert.ok(!p.startsWith('/') && !p.includes('..'), p);
    } catch (e) {
      assert.equal((e as Error).name, 'VmFolderError', `mutation ${i} threw ${(e as Error).stack}`);
      refused++;
    }
  }
  assert.ok(refused > 300, `only ${refused} of 400 mutations refused`);
  writeFileSync(cfgPath, good);
});

// VM folder bookkeeping without running a guest: the tree after save,
// revert and delete; a revert interrupted by a kill is finished by the next
// lock; a stale lock is taken over; a folder copied elsewhere opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQcow2File, openBlockFile, qcow2Info } from '../host/node/block.js';
import { formatTree, linkedCloneVm, specDisks, VmFolder } from './folder.js';
import { defaultSpec } from './spec.js';
import { revertSnapshot } from './revert.js';

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
  revertSnapshot(vm, 'a', null);
  assert.equal(disk(vm)[0], 1);
  writeDisk(vm, Buffer.alloc(1 << 20, 3));
  vm.saveSnapshot('c', '', null);
  const t = vm.tree();
  assert.equal(t.snapshots.find((s) => s.name === 'c')?.parent, t.snapshots.find((s) => s.name === 'a')?.id);
  assert.match(formatTree(t), /^a .*first\n\|- b .*\n`- c .*<- you are here$/);
  assert.throws(() => vm.saveSnapshot('a', '', null), /already has a snapshot 'a'/);
  vm.deleteSnapshot('a');
  assert.deepEqual(vm.tree().snapshots.map((s) => s.parent), [null, null]);
  revertSnapshot(vm, 'b', null);
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

test('a revert to a snapshot whose disk image is damaged, missing or of another size is refused before anything changes', () => {
  const vm = make('damaged');
  vm.lock();
  writeDisk(vm, Buffer.alloc(1 << 20, 1));
  vm.saveSnapshot('a', '', null);
  writeDisk(vm, Buffer.alloc(1 << 20, 2));
  const b = vm.saveSnapshot('b', '', null);
  // back at a, whose disk chain does not go through b's image: b is the one damaged
  revertSnapshot(vm, 'a', null);
  writeDisk(vm, Buffer.alloc(1 << 20, 3));
  const img = join(vm.path, 'snapshots', `${b.id}.hda.qcow2`);
  const good = readFileSync(img);
  const tree = readFileSync(join(vm.path, 'snapshots', 'tree.json'), 'utf8');
  const damage: [string, () => void][] = [
    ['truncated', () => writeFileSync(img, good.subarray(0, 100))],
    ['its L1 table outside the file', () => writeFileSync(img, Buffer.concat([good.subarray(0, 40), Buffer.from([0, 0, 0, 0x10, 0, 0, 0, 0]), good.subarray(48)]))],
    ['missing', () => rmSync(img)],
    ['of another size', () => {
      rmSync(img);
      createQcow2File(img, { size: 2 << 20 });
    }],
  ];
  for (const [what, spoil] of damage) {
    spoil();
    assert.throws(() => revertSnapshot(vm, 'b', null), /snapshot 'b' cannot be loaded: its image of disk hda .*nothing was changed/, what);
    assert.equal(readFileSync(join(vm.path, 'snapshots', 'tree.json'), 'utf8'), tree, `${what}: tree.json changed`);
    assert.equal(disk(vm)[0], 3, `${what}: the disk changed`);
    rmSync(img, { force: true });
    writeFileSync(img, good);
  }
  revertSnapshot(vm, 'b', null);
  assert.equal(disk(vm)[0], 2);
  vm.unlock();
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

test('a virtio data disk (the default guest\'s) is frozen, reverted and linked like an IDE disk', () => {
  const vm = VmFolder.create(join(dir, 'vd.tsvm'), 'vd', defaultSpec({ bios: rom, vgaBios: null, memoryBytes: 1 << 20, virtio: [{ type: 'rng' }] }), { vda: 1 << 20 });
  // the data disk goes first among the virtio devices, so the guest names it /dev/vda
  assert.deepEqual(vm.spec.virtio, [{ type: 'blk', file: 'disks/vda.qcow2', format: 'qcow2', mode: 'rw' }, { type: 'rng' }]);
  assert.deepEqual(specDisks(vm.spec).map((d) => d.key), ['vda']);
  const vda = (v: VmFolder, mode: 'ro' | 'rw') => openBlockFile(join(v.path, 'disks', 'vda.qcow2'), mode, 'vda', 'qcow2');
  const put = (v: VmFolder, byte: number) => {
    const o = vda(v, 'rw');
    o.backend.write(0, Buffer.alloc(4096, byte));
    o.close();
  };
  const get = (v: VmFolder) => {
    const o = vda(v, 'ro');
    const b = Buffer.alloc(4096);
    o.backend.read(0, b);
    o.close();
    return b[0];
  };
  vm.lock();
  put(vm, 1);
  const a = vm.saveSnapshot('a', '', null);
  assert.equal(qcow2Info(join(vm.path, 'snapshots', `${a.id}.vda.qcow2`))?.size, 1 << 20, 'the frozen image is named after the disk');
  put(vm, 2);
  vm.saveSnapshot('b', '', null);
  revertSnapshot(vm, 'a', null);
  assert.equal(get(vm), 1);
  const lc = linkedCloneVm(vm, vm.find('b'), join(dir, 'vdl.tsvm'), 'vdl');
  vm.unlock();
  assert.equal(lc.spec.virtio?.[0].type, 'blk');
  assert.equal(qcow2Info(join(lc.path, 'disks', 'vda.qcow2'))?.backingFile, `../../vd.tsvm/snapshots/${vm.find('b').id}.vda.qcow2`);
  assert.equal(get(lc), 2);
});

test('vm.json may not point virtio devices or packet dumps outside the folder', () => {
  const vm = make('hostile');
  const cfgPath = join(vm.path, 'vm.json');
  const good = JSON.parse(readFileSync(cfgPath, 'utf8'));
  for (const [extra, re] of [
    [{ virtio: [{ type: '9p', path: '/', tag: 'root' }] }, /virtio\[0\] is an absolute path/],
    [{ virtio: [{ type: 'blk', file: '../../x.img' }] }, /virtio\[0\] \(\.\.\/\.\.\/x\.img\) points outside the VM folder/],
    [{ virtio: [{ type: 'console', chardev: 'file:/etc/motd' }] }, /virtio\[0\] is an absolute path/],
    [{ nics: [{ dump: '/tmp/x.pcap' }] }, /nic 0 dump is an absolute path/],
  ] as const) {
    writeFileSync(cfgPath, JSON.stringify({ ...good, spec: { ...good.spec, ...extra } }));
    assert.throws(() => VmFolder.open(vm.path), (e: Error) => e.name === 'VmFolderError' && re.test(e.message), JSON.stringify(extra));
  }
});

test('fuzz: flipped and truncated bytes of tree.json are refused with VmFolderError or read as a tree whose files stay in snapshots/', () => {
  const vm = make('treefuzz');
  vm.lock();
  vm.saveSnapshot('one', '', null);
  vm.saveSnapshot('two', '', null);
  revertSnapshot(vm, 'one', null);
  vm.saveSnapshot('three', 'a branch', null);
  vm.unlock();
  const treePath = join(vm.path, 'snapshots', 'tree.json');
  const good = readFileSync(treePath);
  assert.equal(VmFolder.open(vm.path).tree().snapshots.length, 3);
  let x = 0x0badf00d;
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
    writeFileSync(treePath, bad);
    try {
      const t = VmFolder.open(vm.path).tree();
      // accepted: every id names a file inside snapshots/, and the links between nodes hold
      const ids = new Set(t.snapshots.map((n) => n.id));
      for (const n of t.snapshots) {
        assert.match(n.id, /^[A-Za-z0-9_-]+$/, `mutation ${i}`);
        assert.ok(n.parent === null || ids.has(n.parent), `mutation ${i}: parent`);
      }
      assert.ok(t.current === null || ids.has(t.current), `mutation ${i}: current`);
    } catch (e) {
      assert.equal((e as Error).name, 'VmFolderError', `mutation ${i} threw ${(e as Error).stack}`);
      refused++;
    }
  }
  assert.ok(refused > 200, `only ${refused} of 400 mutations refused`);
  // a hostile id (a path out of the folder) is refused by name
  const t = JSON.parse(good.toString('utf8')) as { current: string; snapshots: { id: string; parent: string | null }[] };
  const old = t.snapshots[0].id;
  t.snapshots[0].id = '../../victim';
  for (const n of t.snapshots) if (n.parent === old) n.parent = '../../victim';
  if (t.current === old) t.current = '../../victim';
  writeFileSync(treePath, JSON.stringify(t));
  assert.throws(() => VmFolder.open(vm.path).tree(), /is damaged: snapshot id "\.\.\/\.\.\/victim" is not letters and digits/);
  writeFileSync(treePath, good);
});

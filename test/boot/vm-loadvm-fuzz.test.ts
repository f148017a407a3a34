// Fuzz of a saved snapshot through the monitor of a running VM, as a user
// with a damaged VM folder meets it: the default guest's VM boots once and
// saves snapshots; then, case after case, the files of one snapshot (its
// machine state, snapshots/<id>.snap, and its frozen data-disk image,
// snapshots/<id>.vda.qcow2) get bytes flipped, are cut short or go
// missing, and `loadvm TAG` is typed at the monitor (Ctrl-A C). Each
// attempt must be refused with one line saying why, the running guest
// going on unchanged (its mark in RAM and its mark on /data as they were,
// tree.json's position unmoved, the shell answering), or, for a flip the
// checks cannot see (qcow2 data clusters carry no checksum), load; tsvm
// never ends. The intact snapshot loads at the end. Seeded: the same
// cases every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, linesAfter, TsvmChild } from '../helpers/child.js';
import { seeded } from '../helpers/seeded.js';

const CASES = 30;

test('damaged snapshot files are refused by loadvm on a running VM, which goes on unchanged; the intact snapshot loads after', { timeout: 2_400_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-loadfuzz-'));
  const c = spawnSync(process.execPath, [TSVM, 'create', 'fz', '-nic', 'none', '-disk-size', '64M', '--dir', dir], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(c.status, 0, c.stderr);
  const vm = join(dir, 'fz.tsvm');
  /** The guest's two marks, one in RAM (the initramfs root) and one on /data (read from the disk, the page cache dropped). */
  const marks = async (v: TsvmChild) => {
    // what follows the line M-2 (the echoed command line reads M-$((1+1)))
    const out = await v.shell('echo 3 > /proc/sys/vm/drop_caches; echo M-$((1+1)); cat /root/mark /data/mark');
    return linesAfter(out, 'M-2');
  };
  const mark = (n: string) => `echo ram-${n} > /root/mark; echo disk-${n} > /data/mark; sync`;
  const tree = () => JSON.parse(readFileSync(join(vm, 'snapshots', 'tree.json'), 'utf8')) as { current: string; reverting?: string | null; snapshots: { id: string; name: string }[] };

  const v = new TsvmChild(['start', vm, '-timeout', '2400']);
  try {
    await v.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(v.out, /data disk: \/dev\/vda mounted on \/data/);
    await v.shell(mark('base'));
    assert.match(await v.monitor('savevm base', /snapshot base saved|savevm:.*/), /snapshot base saved/);
    await v.shell(mark('good'));
    assert.match(await v.monitor('savevm good', /snapshot good saved|savevm:.*/), /snapshot good saved/);
    // back at base, the present state goes on beside good (whose disk image is then in no chain the guest reads)
    assert.match(await v.monitor('loadvm base', /back at snapshot base|loadvm:.*/), /back at snapshot base/);
    assert.equal(await marks(v), 'ram-base disk-base');
    await v.shell(mark('live'));
    assert.match(await v.monitor('savevm live', /snapshot live saved|savevm:.*/), /snapshot live saved/);
    const good = tree().snapshots.find((n) => n.name === 'good');
    const live = tree().snapshots.find((n) => n.name === 'live');
    assert.ok(good && live, 'tree.json names good and live');
    const files = { snap: join(vm, 'snapshots', `${good.id}.snap`), image: join(vm, 'snapshots', `${good.id}.vda.qcow2`) };
    const intact = { snap: readFileSync(files.snap), image: readFileSync(files.image) };
    // no other name shares these files' contents (what the test writes goes to good's files alone)
    assert.equal(lstatSync(files.snap).nlink, 1);
    assert.equal(lstatSync(files.image).nlink, 1);

    const rnd = seeded(0x6b43a9b5);
    let refused = 0;
    let loaded = 0;
    // where the damage goes: in the state file, its start (the header, the device sections) or anywhere (mostly RAM);
    // in the image, its metadata (the header and backing name, the L1 table, the refcount table) or anywhere (mostly data)
    const img = intact.image;
    const l1 = Number(img.readBigUInt64BE(40));
    const rt = Number(img.readBigUInt64BE(48));
    const backing = Number(img.readBigUInt64BE(8));
    const regions = {
      snap: [[0, 65536], [0, intact.snap.length]],
      image: [[0, img.readUInt32BE(100)], [backing, backing + img.readUInt32BE(16)], [l1, l1 + 8 * img.readUInt32BE(36)], [rt, rt + 64], [0, img.length]],
    };
    let imageRefused = 0;
    for (let i = 0; i < CASES; i++) {
      // every tenth case a file goes missing, the state and the image in turn
      const which = i % 10 === 9 ? (i % 20 === 9 ? 'snap' : 'image') : rnd(3) < 2 ? 'snap' : 'image';
      const path = files[which];
      const b = Buffer.from(intact[which]);
      let what: string;
      if (i % 10 === 9) {
        rmSync(path);
        what = `${which} missing`;
      } else if (i % 4 === 0) {
        const n = rnd(b.length);
        writeFileSync(path, b.subarray(0, n));
        what = `${which} cut to ${n} of ${b.length} bytes`;
      } else {
        const [from, to] = regions[which][rnd(regions[which].length)];
        const at: number[] = [];
        for (let k = 0; k <= rnd(3); k++) {
          const p = from + rnd(Math.min(to, b.length) - from);
          b[p] ^= 1 << rnd(8);
          at.push(p);
        }
        writeFileSync(path, b);
        what = `${which} with bits flipped at ${at.join(', ')}`;
      }
      const answer = await v.monitor('loadvm good', /back at snapshot good|loadvm: [^\r\n]*[\r\n]/);
      assert.doesNotMatch(answer, /\n\s+at |TypeError|RangeError/, `case ${i} (${what}): ${answer}`);
      t.diagnostic(`case ${i}: ${what}: ${/loadvm: [^\r\n]*/.exec(answer)?.[0] ?? 'loaded'}`);
      if (/loadvm: /.test(answer)) {
        refused++;
        if (which === 'image') imageRefused++;
        // nothing moved: the guest's marks, the tree's position, and the shell answers
        assert.equal(await marks(v), 'ram-live disk-live', `case ${i} (${what}): the guest changed after a refused loadvm (${answer.trim()})`);
        const tr = tree();
        assert.equal(tr.current, live.id, `case ${i} (${what}): tree.json's position moved`);
        assert.ok(!tr.reverting, `case ${i} (${what}): tree.json was left half reverted`);
      } else {
        // loaded: only a flip no check can see (a qcow2 data cluster); the state is good's, and back to live
        loaded++;
        assert.equal(which, 'image', `case ${i} (${what}): a damaged machine state was loaded`);
        assert.match(await marks(v), /^ram-good /, `case ${i} (${what})`);
        assert.match(await v.monitor('loadvm live', /back at snapshot live|loadvm:.*/), /back at snapshot live/);
        assert.equal(await marks(v), 'ram-live disk-live');
      }
      writeFileSync(path, intact[which]);
      if (which === 'image') writeFileSync(files.snap, intact.snap);
      else writeFileSync(files.image, intact.image);
    }
    t.diagnostic(`refused ${refused} (${imageRefused} for the image), loaded ${loaded} of ${CASES}`);
    // every damaged state was refused (asserted case by case); damaged image metadata is refused too
    assert.ok(imageRefused >= 3, `only ${imageRefused} damaged images refused`);

    // the intact snapshot loads, with its RAM and its disk
    assert.match(await v.monitor('loadvm good', /back at snapshot good|loadvm:.*/), /back at snapshot good/);
    assert.equal(await marks(v), 'ram-good disk-good');
    v.child.stdin.write('\x01x');
    assert.equal(await v.exit(300_000), 0, v.tail());
  } finally {
    v.kill();
  }
  for (const sub of ['disks', 'snapshots']) {
    for (const img of readdirSync(join(vm, sub)).filter((n) => n.endsWith('.qcow2'))) {
      const r = spawnSync('qemu-img', ['check', '-q', join(vm, sub, img)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `qemu-img check ${sub}/${img}: ${r.stdout}${r.stderr}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

// Fuzz of the file names in a VM folder's vm.json, as a folder from
// elsewhere (an archive, another user) may hold them: every field that names
// a file (firmware, kernel, vmlinux, initrd, the IDE drives, virtio disks,
// 9p folders and consoles, a NIC's packet dump, the serial, debug-console and
// POST-code files) given an absolute path, a `..` escape, a symlink (to a
// file, through a directory, dangling) leading outside the folder, a NUL
// byte, an empty string, a huge string or a value of the wrong type; and the
// folder's own entries (vm.log, lock, disks/, snapshots/, ...) as symlinks
// leading out. Each is refused, with one short line naming the field, by
// `tsvm list` (all cases in one listing), `tsvm start` and `tsvm clone` (a
// seeded sample that covers every field and every kind of bad value), and
// nothing in the folder or outside it changes (the tree hashed before and
// after). Seeded: the same cases every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSVM } from '../helpers/child.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-vmjson-'));
const vms = join(dir, 'vms');
const out = join(dir, 'outside');

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args, '--dir', vms], { encoding: 'utf8', timeout: 120_000, input: '' });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** Everything under `d` (not following symlinks): names, kinds, link targets, sizes and content hashes. */
function tree(d: string): string[] {
  const lines: string[] = [];
  const walk = (p: string, rel: string) => {
    for (const name of readdirSync(p).sort()) {
      const q = join(p, name);
      const r = `${rel}${name}`;
      const st = lstatSync(q);
      if (st.isSymbolicLink()) lines.push(`${r} -> ${readlinkSync(q)}`);
      else if (st.isDirectory()) {
        lines.push(`${r}/`);
        walk(q, r + '/');
      } else lines.push(`${r} ${st.size} ${createHash('sha256').update(readFileSync(q)).digest('hex')}`);
    }
  };
  walk(d, '');
  return lines;
}

let x = 0x2545f491;
function rnd(n: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) % n;
}
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];

type Spec = Record<string, unknown>;
/** Each field that names a file: how a value goes into the spec, and the word the error names it by. */
const FIELDS: { name: string; subject: RegExp; set: (s: Spec, v: unknown) => void }[] = [
  { name: 'bios', subject: /\bbios\b/, set: (s, v) => (s.bios = v) },
  { name: 'vgaBios', subject: /\bvgaBios\b/, set: (s, v) => (s.vgaBios = v) },
  { name: 'kernel', subject: /\bkernel\b/, set: (s, v) => (s.linux = { kernel: v, cmdline: '' }) },
  { name: 'vmlinux', subject: /\bvmlinux\b/, set: (s, v) => (s.linux = { kernel: 'boot/rom.bin', vmlinux: v, cmdline: '' }) },
  { name: 'initrd', subject: /\binitrd\b/, set: (s, v) => (s.linux = { kernel: 'boot/rom.bin', initrd: v, cmdline: '' }) },
  { name: 'hda', subject: /\bhda\b/, set: (s, v) => ((s.drives as Spec).hda = { file: v, format: 'qcow2', mode: 'rw' }) },
  { name: 'hdb', subject: /\bhdb\b/, set: (s, v) => ((s.drives as Spec).hdb = { file: v, format: 'raw', mode: 'rw' }) },
  { name: 'cdrom', subject: /\bcdrom\b/, set: (s, v) => ((s.drives as Spec).cdrom = { file: v, format: 'raw', mode: 'ro' }) },
  { name: 'virtio blk', subject: /virtio\[0\]/, set: (s, v) => (s.virtio = [{ type: 'blk', file: v, format: 'raw', mode: 'rw' }]) },
  { name: 'virtio 9p', subject: /virtio\[0\]/, set: (s, v) => (s.virtio = [{ type: '9p', path: v, tag: 'share', readOnly: false }]) },
  { name: 'virtio console', subject: /virtio\[0\]/, set: (s, v) => (s.virtio = [{ type: 'console', chardev: typeof v === 'string' ? `file:${v}` : v }]) },
  { name: 'nic dump', subject: /\bnic 0\b/, set: (s, v) => (s.nics = [{ model: 'e1000', net: 'user', dump: v }]) },
  { name: 'serial', subject: /\bserial\b/, set: (s, v) => (s.serial = typeof v === 'string' ? `file:${v}` : v) },
  { name: 'debugcon', subject: /\bdebugcon\b/, set: (s, v) => (s.debugcon = typeof v === 'string' ? `file:${v}` : v) },
  { name: 'postcodes', subject: /\bpostcodes\b/, set: (s, v) => (s.postcodes = typeof v === 'string' ? `file:${v}` : v) },
];

/** Kinds of bad value, each a seeded draw of its variants. */
const KINDS: { name: string; value: () => unknown }[] = [
  { name: 'absolute path', value: () => pick(['/etc/passwd', join(out, 'secret.img'), join(out, 'new.out'), '/tmp/../etc/shadow', '//x']) },
  { name: '.. escape', value: () => pick(['../outside.img', 'disks/../../outside.img', '..', 'boot/../../../../etc/passwd', './../x', 'disks/../../../' + 'a'.repeat(10)]) },
  { name: 'symlink to a file outside', value: () => pick(['disks/evil.img', 'boot/evil.img']) },
  { name: 'path through a symlinked directory', value: () => pick(['out/secret.img', 'out/new.out', 'out/sub/x']) },
  { name: 'dangling symlink', value: () => 'disks/dangling' },
  { name: 'NUL byte', value: () => pick(['disks/a\0b', '\0', 'boot/rom.bin\0.txt']) },
  { name: 'empty string', value: () => '' },
  { name: 'huge string', value: () => pick(['a', 'x/', '../'])!.repeat(5000 + rnd(300_000)) },
  { name: 'wrong type', value: () => pick([42, true, [], {}, -1.5, ['boot/rom.bin']]) },
];

/** The folder's own entries (by fixed name) replaced by symlinks leading out. */
const ENTRIES = ['vm.log', 'lock', 'suspended.snap', 'snapshots', 'disks'];

interface Case {
  name: string;
  folder: string;
  subject: RegExp;
}

test('file names in vm.json leading outside the folder, through symlinks, or malformed are refused by tsvm list, start and clone, and nothing changes', { timeout: 900_000 }, async (t) => {
  mkdirSync(vms);
  mkdirSync(out);
  writeFileSync(join(out, 'secret.img'), Buffer.alloc(65536, 0x5a));
  writeFileSync(join(dir, 'outside.img'), Buffer.alloc(4096, 0x33));
  // firmware that halts at once (HLT with interrupts off at reset): the intact VM starts and stops
  const rom = join(dir, 'rom.bin');
  writeFileSync(rom, Buffer.alloc(65536, 0xf4));
  const c = tsvm('create', 'base', '-bios', rom, '-m', '8M', '-disk-size', '4M');
  assert.equal(c.code, 0, c.err);
  const base = join(vms, 'base.tsvm');
  // symlinks leading out that no field names yet: the intact VM must not mind them
  symlinkSync(join(out, 'secret.img'), join(base, 'disks', 'evil.img'));
  symlinkSync(join(out, 'secret.img'), join(base, 'boot', 'evil.img'));
  symlinkSync(out, join(base, 'out'));
  symlinkSync(join(out, 'nothing-here'), join(base, 'disks', 'dangling'));
  const ok = tsvm('start', 'base', '-timeout', '60');
  assert.equal(ok.code, 0, `the intact VM starts (and halts): ${ok.err}`);
  const config = JSON.parse(readFileSync(join(base, 'vm.json'), 'utf8')) as { spec: Spec };

  const cases: Case[] = [];
  const make = (name: string, edit: (folder: string, cfg: { spec: Spec }) => void, subject: RegExp) => {
    const folder = join(vms, `c${cases.length}.tsvm`);
    cpSync(base, folder, { recursive: true, verbatimSymlinks: true });
    const cfg = JSON.parse(JSON.stringify({ ...config, name: `c${cases.length}` })) as { spec: Spec };
    edit(folder, cfg);
    writeFileSync(join(folder, 'vm.json'), JSON.stringify(cfg));
    cases.push({ name, folder, subject });
  };
  for (const f of FIELDS) {
    for (const k of KINDS) {
      const v = k.value();
      // a file (not a folder) for 9p to share is refused when it opens; a 9p symlink case leads to the outside folder
      const value = f.name === 'virtio 9p' && v === 'disks/evil.img' ? 'out' : v;
      make(`${f.name}: ${k.name} ${JSON.stringify(value).slice(0, 40)}`, (_, cfg) => f.set(cfg.spec, value), f.subject);
    }
  }
  for (const e of ENTRIES) {
    make(
      `${e} a symlink out`,
      (folder) => {
        const target = join(out, `entry-${e}`);
        if (e === 'snapshots' || e === 'disks') cpSync(join(folder, e), target, { recursive: true });
        rmSync(join(folder, e), { recursive: true, force: true });
        symlinkSync(target, join(folder, e));
      },
      new RegExp(`\\b${e}\\b`),
    );
  }
  const before = tree(dir);

  const refused = (what: string, r: ReturnType<typeof tsvm>, cs: Case) => {
    assert.equal(r.signal, null, `${cs.name}: tsvm ${what} was killed: ${r.err}`);
    assert.equal(r.code, 1, `${cs.name}: tsvm ${what} exited ${r.code}, not refusing: ${r.out}${r.err}`);
    assert.doesNotMatch(r.err, /\n\s+at |Uncaught|node:internal/, `${cs.name}: tsvm ${what} crashed: ${r.err}`);
    const line = r.err.trim();
    assert.match(line, /^tsvm: [^\n]+$/, `${cs.name}: tsvm ${what} should say one line: ${r.err.slice(0, 2000)}`);
    assert.ok(line.length < 400, `${cs.name}: tsvm ${what}'s error is ${line.length} characters long: ${line.slice(0, 500)}`);
    assert.match(line, cs.subject, `${cs.name}: tsvm ${what}'s error does not name the field: ${line}`);
  };

  // tsvm list: every case in one listing, each broken, naming its field
  const l = tsvm('list');
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, /\nbase\s+stopped/);
  for (let i = 0; i < cases.length; i++) {
    const row = l.out.split('\n').find((r) => r.startsWith(`c${i} `));
    assert.ok(row, `${cases[i].name}: not in tsvm list:\n${l.out}`);
    assert.match(row, /^c\d+\s+broken: /, `${cases[i].name}: tsvm list shows ${row}`);
    assert.match(row, cases[i].subject, `${cases[i].name}: tsvm list does not name the field: ${row}`);
    assert.ok(row.length < 400, `${cases[i].name}: tsvm list's row is ${row.length} characters long`);
  }
  assert.deepEqual(tree(dir), before, 'tsvm list changed something');

  // start and clone: a seeded sample in which every field and every kind of bad value comes up
  const sample = (): number[] => {
    const chosen = new Set<number>();
    FIELDS.forEach((_, fi) => chosen.add(fi * KINDS.length + rnd(KINDS.length)));
    KINDS.forEach((_, ki) => chosen.add(rnd(FIELDS.length) * KINDS.length + ki));
    ENTRIES.forEach((_, ei) => chosen.add(FIELDS.length * KINDS.length + ei));
    return [...chosen].sort((a, b) => a - b);
  };
  const starts = sample();
  for (const i of starts) {
    const cs = cases[i];
    refused('start', tsvm('start', `c${i}`, '-timeout', '30'), cs);
    assert.deepEqual(tree(dir), before, `${cs.name}: tsvm start changed something`);
  }
  const clones = sample();
  for (const i of clones) {
    const cs = cases[i];
    const linked = rnd(2) === 1;
    const r = linked ? tsvm('clone', '--linked', `c${i}`, `copy${i}`) : tsvm('clone', `c${i}`, `copy${i}`);
    refused(linked ? 'clone --linked' : 'clone', r, cs);
    assert.ok(!existsSync(join(vms, `copy${i}.tsvm`)), `${cs.name}: a clone was made`);
    assert.deepEqual(tree(dir), before, `${cs.name}: tsvm clone changed something`);
  }
  t.diagnostic(`${cases.length} cases listed; ${starts.length} started, ${clones.length} cloned`);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Linked clones through the daemon's API: a VM whose qcow2 disk holds a
 * known boot sector is cloned linked (on a new base snapshot and on a named
 * one); the clone's disk is an overlay backing onto the source's snapshot
 * image, and the clone, started, reads the source's data through it. The
 * shared snapshot and the source itself refuse deletion with 409 while the
 * clone exists; bad combinations are refused with nothing made. The guest is
 * a small ROM (no Linux boot): it reads sector 0 over ATA and prints
 * <d=XY>, its first and last bytes. Every response is checked against the
 * daemon's OpenAPI document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';
import { qcow2Info } from '../../src/host/node/block.js';

const READ_ROM = `
bits 16
org 0
start:
xor ax, ax
mov ds, ax
mov es, ax
mov ss, ax
mov sp, 0x7000
${COM1_INIT_8N1}
mov dx, 0x1f6
mov al, 0xe0
out dx, al
mov dx, 0x1f2
mov al, 1
out dx, al
xor al, al
inc dx
out dx, al
inc dx
out dx, al
inc dx
out dx, al
mov dx, 0x1f7
mov al, 0x20
out dx, al
.busy: in al, dx
test al, 0x80
jnz .busy
.drq: in al, dx
test al, 8
jz .drq
mov di, 0x1000
mov cx, 256
mov dx, 0x1f0
rep insw
mov si, msg
.m: cs lodsb
test al, al
jz .n
call putc
jmp .m
.n: mov al, [0x1000]
call putc
mov al, [0x11ff]
call putc
mov al, '>'
call putc
sti
.h: hlt
jmp .h
putc: mov ah, al
mov dx, 0x3fd
.t: in al, dx
test al, 0x20
jz .t
mov al, ah
mov dx, 0x3f8
out dx, al
ret
msg: db '<d=', 0
${ROM_TAIL}
`;

type Vm = { name: string; state: string };
type Tree = { current: string | null; snapshots: { id: string; name: string; sharedWith?: { name: string }[] }[] };

test('linked clones through the API: overlays over a source snapshot, refusals, the clone runs on the shared data', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsvm-clone-'));
  writeFileSync(join(tmp, 'read.asm'), READ_ROM);
  const nasm = spawnSync('nasm', ['-f', 'bin', join(tmp, 'read.asm'), '-o', join(tmp, 'read.rom')], { encoding: 'utf8' });
  assert.equal(nasm.status, 0, nasm.stderr);
  // sector 0: 'A' ... 'Z'; made a qcow2 image by qemu-img
  const raw = new Uint8Array(1 << 20);
  raw.fill(0x41, 0, 511);
  raw[511] = 0x5a;
  writeFileSync(join(tmp, 'disk.img'), raw);
  const conv = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(tmp, 'disk.img'), join(tmp, 'disk.qcow2')], { encoding: 'utf8' });
  assert.equal(conv.status, 0, conv.stderr);
  const machine = (file: string, format: string) => ({
    version: 1,
    memoryBytes: 16 * 1048576,
    bios: join(tmp, 'read.rom'),
    vgaBios: null,
    linux: null,
    boot: 'c',
    drives: { hda: { file, format, mode: 'rw' } },
    rtcEpochSec: 1_700_000_000,
    serial: 'none',
    debugcon: null,
    postcodes: null,
  });

  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  assert.equal((await d.api('POST', '/api/vms', { name: 'src', machine: machine(join(tmp, 'disk.qcow2'), 'qcow2') })).status, 201);
  assert.equal((await d.api('POST', '/api/vms', { name: 'rawsrc', machine: machine(join(tmp, 'disk.img'), 'raw') })).status, 201);
  const tree = async (name: string) => (await d.api('GET', `/api/vms/${name}/snapshots`)).json as Tree;
  const names = async () => ((await d.api('GET', '/api/vms')).json as { vms: Vm[] }).vms.map((v) => v.name).sort();
  /** Start a VM, attach its console and return what it printed once `re` shows (the console sends the recent output first). */
  const runUntil = async (name: string, re: RegExp): Promise<string> => {
    assert.equal((await d.api('POST', `/api/vms/${name}/start`)).status, 200);
    let serial = '';
    const con = d.socket(`/api/vms/${name}/console`);
    con.on('message', (b: Buffer) => (serial += b.toString('latin1')));
    await opened(con);
    for (let i = 0; i < 600 && !re.test(serial); i++) {
      if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}): ${d.child.tail()}`);
      const v = (await d.api('GET', `/api/vms/${name}`)).json as Vm & { reason: string | null };
      if (v.state === 'crashed' || v.state === 'stopped') throw new Error(`${name} is ${v.state} (${v.reason}) before printing ${re}; it printed ${JSON.stringify(serial)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    con.close();
    assert.match(serial, re);
    return serial;
  };

  const stop = async (name: string) => {
    const from = events.events.length;
    assert.equal((await d.api('POST', `/api/vms/${name}/stop`)).status, 200);
    await events.waitFor((e) => e.type === 'state' && e.vm === name && e.state === 'stopped', 30_000, `${name} stopped`, from);
  };

  await t.test('bad combinations are refused with 400, an unknown snapshot with 404, a raw-disk source with 409; nothing is made', async () => {
    const cases: [string, Record<string, unknown>, number, RegExp][] = [
      ['src', { name: 'x', snapshot: 'a' }, 400, /snapshot goes with "linked": true/],
      ['src', { name: 'x', linked: false, snapshot: 'a' }, 400, /snapshot goes with "linked": true/],
      ['src', { name: 'x', linked: 'yes' }, 400, /linked is true .* or false/],
      ['src', { name: 'x', linked: true, snapshot: 7 }, 400, /snapshot is the name/],
      ['src', { name: 'x', linked: true, snapshot: 'nosuch' }, 404, /has no snapshot 'nosuch'/],
      ['rawsrc', { name: 'x', linked: true }, 409, /raw disks \(hda\).*qcow2/],
    ];
    for (const [src, body, status, re] of cases) {
      const r = await d.api('POST', `/api/vms/${src}/clone`, body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.match((r.json as { error: { message: string } }).error.message, re);
    }
    assert.deepEqual(await names(), ['rawsrc', 'src']);
    assert.ok(!existsSync(join(d.dir, 'x.tsvm')));
    assert.deepEqual((await tree('src')).snapshots, [], 'no base snapshot was saved for a refused clone');
    assert.deepEqual((await tree('rawsrc')).snapshots, []);
  });

  await t.test('a running source is refused as for a full clone', async () => {
    await runUntil('src', /<d=AZ>/);
    const r = await d.api('POST', '/api/vms/src/clone', { name: 'x', linked: true });
    assert.equal(r.status, 409, r.text);
    assert.match((r.json as { error: { message: string } }).error.message, /stop it before cloning/);
    await stop('src');
    assert.deepEqual((await tree('src')).snapshots, []);
  });

  await t.test('a linked clone on a new base snapshot: an overlay over the source, listed, with progress', async () => {
    const from = events.events.length;
    const r = await d.api('POST', '/api/vms/src/clone', { name: 'lc', linked: true });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual([(r.json as Vm).name, (r.json as Vm).state], ['lc', 'stopped']);
    assert.deepEqual(await names(), ['lc', 'rawsrc', 'src']);
    const base = (await tree('src')).snapshots.find((n) => n.name === 'clone-lc');
    assert.ok(base, 'the source has the base snapshot clone-lc');
    const disk = join(d.dir, 'lc.tsvm', 'disks', 'hda.qcow2');
    const backing = qcow2Info(disk)?.backingFile;
    assert.ok(backing, "the clone's disk is a qcow2 overlay with a backing file");
    const target = resolve(dirname(disk), backing);
    assert.equal(relative(join(d.dir, 'src.tsvm', 'snapshots'), dirname(target)), '', `the backing file ${backing} is in the source's snapshots/`);
    assert.ok(existsSync(target));
    assert.ok(statSync(disk).size < statSync(target).size + 512 * 1024 && statSync(disk).size < 1 << 20, 'no disk data was copied');
    const prog = events.events.slice(from).filter((e) => e.type === 'progress' && e.vm === 'lc') as { operation: string; done: number; total: number; percent: number }[];
    assert.ok(prog.length >= 2 && prog.every((p) => p.operation === 'linked clone of src'), JSON.stringify(prog));
    assert.equal(prog[0].percent, 0);
    assert.equal(prog[prog.length - 1].percent, 100);
    assert.ok(events.events.slice(from).some((e) => e.type === 'snapshots' && e.vm === 'src'), "the source's tree changed");
    assert.ok(events.events.slice(from).some((e) => e.type === 'created' && e.vm === 'lc'));
    assert.equal((await d.api('POST', '/api/vms/src/clone', { name: 'lc', linked: true })).status, 409, 'the name is taken');
  });

  await t.test('a linked clone on a named snapshot; the clone runs and reads the source data through its overlay', async () => {
    assert.equal((await d.api('POST', '/api/vms/src/snapshots', { name: 'base' })).status, 201);
    const r = await d.api('POST', '/api/vms/src/clone', { name: 'lc2', linked: true, snapshot: 'base' });
    assert.equal(r.status, 201, r.text);
    const backing = qcow2Info(join(d.dir, 'lc2.tsvm', 'disks', 'hda.qcow2'))?.backingFile ?? '';
    const baseId = (await tree('src')).snapshots.find((n) => n.name === 'base')?.id ?? '?';
    assert.ok(readdirSync(join(d.dir, 'src.tsvm', 'snapshots')).includes(backing.split('/').pop() ?? ''), backing);
    assert.match(backing, new RegExp(`${baseId}`), 'the overlay backs onto the named snapshot');
    await runUntil('lc', /<d=AZ>/);
    const v = (await d.api('GET', '/api/vms/lc')).json as Vm;
    assert.equal(v.state, 'running');
    await stop('lc');
  });

  await t.test('the shared snapshot and the source refuse deletion with 409 while a clone exists', async () => {
    for (const [path, re] of [
      ['/api/vms/src/snapshots/clone-lc', /shared with the linked clone lc\b/],
      ['/api/vms/src/snapshots/base', /shared with the linked clone lc2\b/],
      ['/api/vms/src', /has linked clones .*lc, lc2/],
    ] as const) {
      const r = await d.api('DELETE', path);
      assert.equal(r.status, 409, `${path}: ${r.text}`);
      assert.match((r.json as { error: { message: string } }).error.message, re);
    }
    const shared = (t: Tree) => Object.fromEntries(t.snapshots.map((n) => [n.name, (n.sharedWith ?? []).map((c) => c.name).join()]));
    assert.deepEqual(shared(await tree('src')), { 'clone-lc': 'lc', base: 'lc2' }, 'the tree says which clone backs onto which snapshot');
    // while the source runs, its worker refuses in the same words
    await runUntil('src', /<d=AZ>/);
    const running = await d.api('DELETE', '/api/vms/src/snapshots/base');
    assert.equal(running.status, 409, running.text);
    await stop('src');
    // the clone gone, its base snapshot can go, and then the source
    assert.equal((await d.api('DELETE', '/api/vms/lc')).status, 204);
    assert.deepEqual(shared(await tree('src')), { 'clone-lc': '', base: 'lc2' }, 'a deleted clone is no longer listed');
    const del = await d.api('DELETE', '/api/vms/src/snapshots/clone-lc');
    assert.equal(del.status, 204, del.text);
    assert.equal((await d.api('DELETE', '/api/vms/src')).status, 409, 'lc2 is still there');
    assert.equal((await d.api('DELETE', '/api/vms/lc2')).status, 204);
    assert.equal((await d.api('DELETE', '/api/vms/src')).status, 204);
  });
  assert.ok(d.checked > 20);
  assert.equal(await d.stop(), 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzDevice, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { HostShare } from '../../host/node/fs9p.js';
import { Virtio9p } from './9p.js';
import type { FsError } from '../backends.js';

/** A tiny 9P2000.L client over the test driver. */
class Client {
  tag = 1;
  constructor(readonly d: VirtioDriver) {}
  /** Send a message built from fields: numbers with a width ('u8:'...), strings, or byte arrays. */
  call(type: number, fields: (['u8' | 'u16' | 'u32' | 'u64', number] | string | Uint8Array)[], room = 8192): { type: number; r: Reader } {
    const parts: number[] = [0, 0, 0, 0, type, this.tag & 0xff, this.tag >> 8];
    for (const f of fields) {
      if (typeof f === 'string') {
        const b = Buffer.from(f);
        parts.push(b.length & 0xff, b.length >> 8, ...b);
      } else if (f instanceof Uint8Array) parts.push(...f);
      else {
        const [w, v] = f;
        const n = { u8: 1, u16: 2, u32: 4, u64: 8 }[w];
        for (let i = 0; i < n; i++) parts.push(i < 4 ? (v >>> (8 * i)) & 0xff : i === 4 ? Math.floor(v / 2 ** 32) & 0xff : 0);
      }
    }
    const msg = new Uint8Array(parts);
    new DataView(msg.buffer).setUint32(0, msg.length, true);
    const u = this.d.request(0, [{ out: msg }, { inLen: room }]);
    assert.ok(u, 'the device answered');
    const reply = u.data.subarray(0, u.len);
    assert.equal(new DataView(reply.buffer, reply.byteOffset).getUint32(0, true), u.len, 'size field matches');
    assert.equal(reply[5] | (reply[6] << 8), this.tag++ & 0xffff, 'tag echoed');
    return { type: reply[4], r: new Reader(reply) };
  }
  ok(type: number, fields: Parameters<Client['call']>[1]): Reader {
    const { type: t, r } = this.call(type, fields);
    if (t === 7) assert.fail(`T${type} failed with errno ${r.u32()}`);
    assert.equal(t, type + 1);
    return r;
  }
  errno(type: number, fields: Parameters<Client['call']>[1]): number {
    const { type: t, r } = this.call(type, fields);
    assert.equal(t, 7, `T${type} should fail`);
    return r.u32();
  }
  attach(fid = 0): void {
    this.ok(100, [['u32', 65536], '9P2000.L']);
    this.ok(104, [['u32', fid], ['u32', 0xffffffff], 'root', '', ['u32', 0]]);
  }
  walk(fid: number, newfid: number, ...names: string[]): number {
    const r = this.ok(110, [['u32', fid], ['u32', newfid], ['u16', names.length], ...names]);
    return r.u16();
  }
}

class Reader {
  pos = 7;
  constructor(readonly b: Uint8Array) {}
  u8(): number {
    return this.b[this.pos++];
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  u32(): number {
    return (this.u16() | (this.u16() << 16)) >>> 0;
  }
  u64(): number {
    return this.u32() + this.u32() * 2 ** 32;
  }
  str(): string {
    const n = this.u16();
    const s = Buffer.from(this.b.subarray(this.pos, this.pos + n)).toString();
    this.pos += n;
    return s;
  }
}

const ENOTDIR = 20, ENOENT = 2, EACCES = 13, EINVAL = 22, EROFS = 30, ELOOP = 40, EPERM = 1;
const O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0o100;

function share(readOnly = false): { dir: string; outside: string; c: Client; d: VirtioDriver } {
  const top = mkdtempSync(join(tmpdir(), 'tsvm-9p-'));
  const dir = join(top, 'share');
  const outside = join(top, 'secret.txt');
  mkdirSync(dir);
  writeFileSync(outside, 'host secret');
  writeFileSync(join(dir, 'hello.txt'), 'hello from the host\n');
  mkdirSync(join(dir, 'sub'));
  symlinkSync('..', join(dir, 'up'));
  symlinkSync(outside, join(dir, 'abs'));
  symlinkSync(top, join(dir, 'sub', 'toTop'));
  const d = new VirtioDriver(new Virtio9p('fs0', 'hostshare', new HostShare(dir, readOnly)));
  d.init({ eventIdx: false });
  const c = new Client(d);
  c.attach();
  return { dir, outside, c, d };
}

test('virtio-9p config: the mount tag', () => {
  const { d } = share();
  assert.equal(d.deviceConfig(0, 2), 9);
  assert.equal(String.fromCharCode(...Array.from({ length: 9 }, (_, i) => d.deviceConfig(2 + i, 1))), 'hostshare');
});

test('virtio-9p: walk, open, read a host file; create, write and read back a new one', () => {
  const { dir, c } = share();
  assert.equal(c.walk(0, 1, 'hello.txt'), 1);
  c.ok(12, [['u32', 1], ['u32', O_RDONLY]]);
  const r = c.ok(116, [['u32', 1], ['u64', 0], ['u32', 4096]]);
  const n = r.u32();
  assert.equal(Buffer.from(r.b.subarray(r.pos, r.pos + n)).toString(), 'hello from the host\n');
  c.walk(0, 2, 'sub');
  c.ok(14, [['u32', 2], 'new.bin', ['u32', O_RDWR | O_CREAT], ['u32', 0o644], ['u32', 0]]);
  const data = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
  assert.equal(c.ok(118, [['u32', 2], ['u64', 0], ['u32', data.length], data]).u32(), 3000);
  c.ok(120, [['u32', 2]]);
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'sub', 'new.bin'))), data);
  // getattr: size and a regular file's mode
  c.walk(0, 3, 'sub', 'new.bin');
  const g = c.ok(24, [['u32', 3], ['u64', 0x7ff]]);
  g.u64();
  g.pos += 13;
  assert.equal(g.u32() & 0o170000, 0o100000);
  g.u32();
  g.u32();
  g.u64();
  g.u64();
  assert.equal(g.u64(), 3000);
});

test('virtio-9p: readdir lists entries with . and ..; mkdir, rename, unlink reach the host', () => {
  const { dir, c } = share();
  c.walk(0, 1);
  c.ok(12, [['u32', 1], ['u32', O_RDONLY]]);
  const r = c.ok(40, [['u32', 1], ['u64', 0], ['u32', 4096]]);
  const end = r.pos + 4 + r.u32();
  const names: string[] = [];
  while (r.pos < end) {
    r.pos += 13 + 8 + 1;
    names.push(r.str());
  }
  assert.deepEqual(names.sort(), ['.', '..', 'abs', 'hello.txt', 'sub', 'up']);
  c.ok(72, [['u32', 0], 'made', ['u32', 0o755], ['u32', 0]]);
  assert.ok(existsSync(join(dir, 'made')));
  c.ok(74, [['u32', 0], 'made', ['u32', 0], 'moved']);
  assert.ok(existsSync(join(dir, 'moved')) && !existsSync(join(dir, 'made')));
  c.ok(76, [['u32', 0], 'moved', ['u32', 0x200]]);
  assert.ok(!existsSync(join(dir, 'moved')));
});

test('virtio-9p: no path leaves the share: .., symlinks out, names with slashes', () => {
  const { dir, c } = share();
  // '..' at the root stays at the root
  assert.equal(c.walk(0, 1, '..', '..', 'hello.txt'), 3);
  c.ok(12, [['u32', 1], ['u32', O_RDONLY]]);
  // a symlink is never followed by the host: walking through it stops, opening it fails
  const { type, r } = c.call(110, [['u32', 0], ['u32', 2], ['u16', 2], 'up', 'secret.txt']);
  assert.equal(type, 111);
  assert.equal(r.u16(), 1, 'the walk stops at the symlink');
  assert.equal(c.errno(110, [['u32', 0], ['u32', 3], ['u16', 1], 'up/secret.txt']), ENOENT);
  c.walk(0, 4, 'abs');
  assert.equal(c.errno(12, [['u32', 4], ['u32', O_RDONLY]]), ELOOP);
  assert.equal(c.ok(22, [['u32', 4]]).str().endsWith('secret.txt'), true, 'readlink gives the text, for the guest to resolve');
  assert.equal(c.errno(14, [['u32', 0], '../escape', ['u32', O_RDWR | O_CREAT], ['u32', 0o644], ['u32', 0]]), EINVAL);
  assert.equal(c.errno(72, [['u32', 0], '..', ['u32', 0o755], ['u32', 0]]), EINVAL);
  assert.ok(!existsSync(join(dir, '..', 'escape')));
  // a directory the host swapped for a symlink to outside after the guest walked into it
  c.walk(0, 5, 'sub');
  renameSync(join(dir, 'sub'), join(dir, 'sub.orig'));
  symlinkSync(join(dir, '..'), join(dir, 'sub'));
  assert.equal(c.errno(110, [['u32', 5], ['u32', 6], ['u16', 1], 'secret.txt']), ENOTDIR);
  assert.throws(() => new HostShare(dir, false).lstat('sub/secret.txt'), (e: FsError) => e.errno === EACCES);
  // a FIFO in the share cannot hang the host: opening it is refused
  assert.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
  c.walk(0, 7, 'fifo');
  assert.equal(c.errno(12, [['u32', 7], ['u32', O_RDONLY]]), EPERM);
});

test('virtio-9p: readonly=on refuses every change with EROFS', () => {
  const { dir, c } = share(true);
  assert.equal(c.errno(14, [['u32', 0], 'x', ['u32', O_RDWR | O_CREAT], ['u32', 0o644], ['u32', 0]]), EROFS);
  assert.equal(c.errno(72, [['u32', 0], 'd', ['u32', 0o755], ['u32', 0]]), EROFS);
  c.walk(0, 1, 'hello.txt');
  assert.equal(c.errno(12, [['u32', 1], ['u32', O_RDWR]]), EROFS);
  assert.equal(c.errno(76, [['u32', 0], 'hello.txt', ['u32', 0]]), EROFS);
  assert.equal(readFileSync(join(dir, 'hello.txt'), 'utf8'), 'hello from the host\n');
});

test('virtio-9p: malformed messages get Rlerror, not a crash; save/load keeps fids and reopens files', () => {
  const { c, d, dir } = share();
  assert.equal(c.errno(116, [['u32', 0]]), EINVAL, 'truncated Tread');
  assert.equal(c.errno(116, [['u32', 77], ['u64', 0], ['u32', 10]]), 9, 'unknown fid: EBADF');
  assert.equal(c.errno(250, []), 38, 'unknown message: ENOSYS');
  c.walk(0, 1, 'hello.txt');
  c.ok(12, [['u32', 1], ['u32', O_RDONLY]]);
  const st = d.pci.saveState();
  const again = new VirtioDriver(new Virtio9p('fs0', 'hostshare', new HostShare(dir, false)));
  again.adopt(d);
  again.pci.loadState(st);
  const c2 = new Client(again);
  c2.tag = c.tag;
  const r = c2.ok(116, [['u32', 1], ['u64', 6], ['u32', 4]]);
  const n = r.u32();
  assert.equal(Buffer.from(r.b.subarray(r.pos, r.pos + n)).toString(), 'from');
});

test('fuzz: virtio-9p survives seeded bad rings and random messages', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const { d } = share();
    const c = new Client(d);
    let x = seed;
    fuzzDevice(d, seed, 200, (drv, check) => {
      x = (x * 1103515245 + 12345) >>> 0;
      const junk = new Uint8Array(8 + (x % 40)).map((_, i) => (x >>> (i % 24)) & 0xff);
      const msg = new Uint8Array([...[0, 0, 0, 0], 100 + (x % 30), 1, 0, ...junk]);
      new DataView(msg.buffer).setUint32(0, x % 3 ? msg.length : x, true);
      drv.request(0, [{ out: msg }, { inLen: 256 }]);
      if (check) {
        c.tag = 1;
        c.attach(9);
        assert.equal(c.walk(9, 10, 'hello.txt'), 1);
      }
    });
  }
});

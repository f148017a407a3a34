import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoCounters } from './iostats.js';
import type { BlockBackend, NetBackend, NetPort } from '../devices/backends.js';

test('IoCounters: a disk counts bytes and operations and passes them through', () => {
  const data = new Uint8Array(4096);
  const inner: BlockBackend = {
    sizeBytes: data.length,
    readOnly: false,
    read: (o, dst) => dst.set(data.subarray(o, o + dst.length)),
    write: (o, src) => data.set(src, o),
    flush: () => {},
  };
  const io = new IoCounters();
  const b = io.disk('hda', inner);
  assert.equal(b.sizeBytes, 4096);
  b.write(512, new Uint8Array(1024).fill(7));
  const dst = new Uint8Array(512);
  b.read(1024, dst);
  b.read(0, dst);
  b.flush();
  assert.equal(dst[0], 0);
  assert.equal(data[512], 7);
  assert.deepEqual(io.snapshot().disks, [{ name: 'hda', readBytes: 1024, readOps: 2, writtenBytes: 1024, writeOps: 1, flushOps: 1 }]);
});

test('IoCounters: a NIC counts frames both ways and passes them through', () => {
  let port: NetPort | null = null;
  const sent: Uint8Array[] = [];
  const inner: NetBackend = {
    attach: (p) => (port = p),
    send: (f) => sent.push(f),
    deliver: () => port?.receive(new Uint8Array(60)),
    close: () => {},
  };
  const got: number[] = [];
  const io = new IoCounters();
  const n = io.nic(inner);
  n.attach({ canReceive: () => true, receive: (f) => got.push(f.length) }, () => {});
  n.send(new Uint8Array(100));
  n.send(new Uint8Array(42));
  n.deliver();
  assert.equal(sent.length, 2);
  assert.deepEqual(got, [60]);
  assert.deepEqual(io.snapshot().nics, [{ name: 'nic0', rxBytes: 60, rxFrames: 1, txBytes: 142, txFrames: 2 }]);
});

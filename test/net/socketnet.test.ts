import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { nodeNetHost } from '../../src/host/node/net.js';
import { QUEUE_BYTES_MAX, QUEUE_PAUSE_BYTES, SocketNet } from '../../src/net/socket.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

test('socket network: two ends over loopback carry frames both ways, whole and in order', async () => {
  const port = await freePort();
  const a = new SocketNet(nodeNetHost, { listen: { addr: '127.0.0.1', port } });
  const b = new SocketNet(nodeNetHost, { connect: { addr: '127.0.0.1', port } });
  const gotA: Uint8Array[] = [];
  const gotB: Uint8Array[] = [];
  a.attach({ canReceive: () => true, receive: (f) => gotA.push(f) }, () => {});
  b.attach({ canReceive: () => true, receive: (f) => gotB.push(f) }, () => {});
  await a.start();
  await b.start();
  for (let i = 0; i < 200 && !(a.connected && b.connected); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(a.connected && b.connected, 'the two ends connected');
  const frames = [60, 1514, 9000, 65000].map((n, k) => new Uint8Array(n).map((_, i) => (i * 31 + k) & 0xff));
  for (const f of frames) b.send(f);
  a.send(frames[1]);
  for (let i = 0; i < 300 && (gotA.length < 4 || gotB.length < 1); i++) {
    a.deliver();
    b.deliver();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(gotA, frames);
  assert.deepEqual(gotB, [frames[1]]);
  a.close();
  b.close();
});

test('socket network: a peer sending faster than the guest takes frames is paused, not dropped: every frame arrives, in order, once the guest takes them', async () => {
  const port = await freePort();
  const net = new SocketNet(nodeNetHost, { listen: { addr: '127.0.0.1', port } });
  let open = false;
  const got: Uint8Array[] = [];
  let wakes = 0;
  net.attach({ canReceive: () => open, receive: (f) => got.push(f) }, () => wakes++);
  await net.start();
  const peer = connect(port, '127.0.0.1');
  await new Promise<void>((r) => peer.once('connect', () => r()));
  // 200 frames of 65,000 bytes (12.4 MiB), each with QEMU's 4-byte length and its number in its first bytes
  const count = 200;
  const frames = Array.from({ length: count }, (_, k) => {
    const f = Buffer.alloc(4 + 65000, k & 0xff);
    f.writeUInt32BE(65000, 0);
    f.writeUInt32BE(k, 4);
    return f;
  });
  for (const f of frames) peer.write(f);
  // the guest takes nothing: reading stops once the queue holds QUEUE_PAUSE_BYTES; the rest waits in the sockets
  for (let i = 0; i < 100; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(net.stats.dropped, 0, 'nothing dropped');
  assert.ok(net.stats.pauses >= 1, 'reading paused');
  assert.ok(net.queuedBytes >= QUEUE_PAUSE_BYTES && net.queuedBytes <= QUEUE_BYTES_MAX, `the queue holds ${net.queuedBytes} bytes`);
  assert.ok(net.stats.received < count, 'the rest waits outside this process');
  assert.match(net.status().note ?? '', /reading paused/);
  assert.ok(wakes > 0);

  // the guest takes frames as they come: reading resumes and every frame arrives, whole and in order
  open = true;
  for (let i = 0; i < 2000 && got.length < count; i++) {
    net.deliver();
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(got.length, count, 'every frame reached the guest');
  assert.equal(net.stats.dropped, 0);
  for (let k = 0; k < count; k++) assert.deepEqual(got[k], new Uint8Array(frames[k].subarray(4)), `frame ${k}`);
  assert.equal(net.queuedBytes, 0);
  assert.deepEqual(net.status(), { kind: `socket listen=127.0.0.1:${port}`, queued: 0, dropped: 0, note: `connected, paused ${net.stats.pauses} times` });
  peer.destroy();
  net.close();
});

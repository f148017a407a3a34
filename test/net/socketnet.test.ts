import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { nodeNetHost } from '../../src/host/node/net.js';
import { QUEUE_BYTES_MAX, SocketNet } from '../../src/net/socket.js';

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

test('socket network: a peer flooding large frames at a guest that takes none fills the queue to its bound, the rest is dropped and counted; taken frames make room again', async () => {
  const port = await freePort();
  const net = new SocketNet(nodeNetHost, { listen: { addr: '127.0.0.1', port } });
  let open = false;
  const got: Uint8Array[] = [];
  net.attach({ canReceive: () => open, receive: (f) => got.push(f) }, () => {});
  await net.start();
  const peer = connect(port, '127.0.0.1');
  await new Promise<void>((r) => peer.once('connect', () => r()));
  // 200 frames of 65,000 bytes (12.4 MiB), each with QEMU's 4-byte length
  const frame = Buffer.alloc(4 + 65000, 0x5a);
  frame.writeUInt32BE(65000, 0);
  const count = 200;
  for (let i = 0; i < count; i++) peer.write(frame);
  for (let i = 0; i < 1000 && net.stats.received + net.stats.dropped < count; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(net.stats.received + net.stats.dropped, count, 'every frame was either queued or dropped');
  assert.ok(net.stats.dropped > 0, 'frames beyond the bound were dropped');
  assert.ok(net.queuedBytes <= QUEUE_BYTES_MAX, `the queue holds ${net.queuedBytes} bytes, at most ${QUEUE_BYTES_MAX}`);
  assert.equal(net.stats.received, Math.floor(QUEUE_BYTES_MAX / 65000), 'the queue filled to its bound');

  // the guest takes what waits; the next frames are queued again
  open = true;
  net.deliver();
  assert.equal(got.length, net.stats.received);
  assert.equal(net.queuedBytes, 0);
  peer.write(frame);
  for (let i = 0; i < 300 && net.queuedBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
  net.deliver();
  assert.equal(got.length, net.stats.received, 'a frame after the drain reached the guest');
  assert.deepEqual(got.at(-1), new Uint8Array(frame.subarray(4)));
  peer.destroy();
  net.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { nodeNetHost } from '../../src/host/node/net.js';
import { SocketNet } from '../../src/net/socket.js';

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

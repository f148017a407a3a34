// The virtual switch (src/net/switch.ts) and its socket server and DHCP
// port: learning, flooding, the drop back to the source port, ageing, the
// per-port queue limit, isolation between two switches, and ports in other
// "processes" (SocketNet clients over a UNIX socket and over loopback TCP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeNetHost } from '../../src/host/node/net.js';
import { EthSwitch, SwitchLink } from '../../src/net/switch.js';
import { serveSwitch } from '../../src/net/switchserver.js';
import { parseSwitchDhcp, SwitchDhcp } from '../../src/net/switchdhcp.js';
import { SocketNet, type StreamAddr } from '../../src/net/socket.js';
import { buildIp4, buildUdp, get16, get32, ip4, parseIp4, put16, put32, PROTO_UDP, BROADCAST_MAC } from '../../src/net/wire.js';

const mac = (n: number) => Uint8Array.from([0x52, 0x54, 0, 0, 0, n]);
const BCAST = BROADCAST_MAC;

/** An Ethernet frame from `src` to `dst` whose payload carries `tag`. */
function frame(dst: Uint8Array, src: Uint8Array, tag: number, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  put16(f, 12, 0x88b5); // the IEEE "local experimental" EtherType
  put32(f, 14, tag);
  return f;
}
const tagOf = (f: Uint8Array) => get32(f, 14);

/** A NIC stand-in: takes every frame (or `room` of them per deliver). */
function nic(link: { attach(p: { canReceive(): boolean; receive(f: Uint8Array): void }, w: () => void): void; deliver(): void }) {
  const got: Uint8Array[] = [];
  link.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => {});
  return {
    got,
    /** The tags that arrived since the last call. */
    take(): number[] {
      link.deliver();
      return got.splice(0).map(tagOf);
    },
  };
}

test('switch: floods broadcasts and unknown MACs, learns, sends known unicast to one port, never back to the source', () => {
  const sw = new EthSwitch();
  const [a, b, c] = [1, 2, 3].map((i) => new SwitchLink(sw, `vm${i}`));
  const [na, nb, nc] = [a, b, c].map(nic);

  a.send(frame(BCAST, mac(1), 1)); // ARP-like broadcast from A
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[], [1], [1]], 'a broadcast reaches every other port, not its sender');

  b.send(frame(mac(1), mac(2), 2)); // B answers A: A was learned from its broadcast
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[2], [], []], 'unicast to a learned MAC reaches that port alone');

  a.send(frame(mac(2), mac(1), 3));
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[], [3], []]);

  a.send(frame(mac(9), mac(1), 4)); // nobody has 9 yet
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[], [4], [4]], 'an unknown unicast MAC is flooded');

  const multicast = Uint8Array.from([0x01, 0x00, 0x5e, 0, 0, 1]);
  c.send(frame(multicast, mac(3), 5));
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[5], [5], []], 'multicast is flooded');

  // a frame whose destination sits on its own port goes nowhere
  c.send(frame(mac(3), mac(33), 6));
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[], [], []]);
  assert.equal(sw.stats.filtered, 1);

  // runts and multicast sources are refused
  a.send(new Uint8Array(10));
  a.send(frame(BCAST, multicast, 7));
  assert.deepEqual([na.take(), nb.take(), nc.take()], [[], [], []]);
  assert.equal(sw.stats.runts, 1);
  assert.equal(sw.stats.badSource, 1);
  assert.deepEqual(
    sw.table().sort((x, y) => x.mac.localeCompare(y.mac)),
    [
      { mac: '52:54:00:00:00:01', port: a.port.id },
      { mac: '52:54:00:00:00:02', port: b.port.id },
      { mac: '52:54:00:00:00:03', port: c.port.id },
      { mac: '52:54:00:00:00:21', port: c.port.id },
    ],
  );
});

test('switch: a frame arrives byte for byte although the sender reuses its buffer; a MAC that moves is relearned', () => {
  const sw = new EthSwitch();
  const [a, b, c] = [1, 2, 3].map((i) => new SwitchLink(sw, `vm${i}`));
  const [na, nb, nc] = [a, b, c].map(nic);
  const buf = frame(BCAST, mac(1), 0, 1514);
  for (let i = 14; i < buf.length; i++) buf[i] = (i * 7) & 0xff;
  const want = buf.slice();
  a.send(buf);
  buf.fill(0xee); // the NIC reuses its transmit buffer at once
  b.deliver();
  assert.deepEqual(nb.got[0], want);
  // mac(1) now talks from port C (its VM was re-plugged): frames to it follow
  nc.take();
  c.send(frame(BCAST, mac(1), 8));
  na.take();
  nb.take();
  b.send(frame(mac(1), mac(2), 9));
  assert.deepEqual([na.take(), nc.take()], [[], [9]]);
});

test('switch: learned MACs age out (flooded again) and leave with their port', () => {
  let now = 0;
  const sw = new EthSwitch({ now: () => now, ageMs: 1000 });
  const [a, b, c] = [1, 2, 3].map((i) => new SwitchLink(sw, `vm${i}`));
  const [, nb, nc] = [a, b, c].map(nic);
  a.send(frame(BCAST, mac(1), 1));
  nb.take();
  nc.take();
  c.send(frame(mac(1), mac(3), 2));
  assert.deepEqual(nb.take(), [], 'known: not flooded');
  now = 1500;
  c.send(frame(mac(1), mac(3), 3));
  assert.deepEqual(nb.take(), [3], 'aged out: flooded again');
  assert.equal(sw.lookup(mac(1)), null);
  b.send(frame(mac(3), mac(2), 4));
  assert.equal(sw.lookup(mac(2))?.id, b.port.id);
  b.close();
  assert.equal(sw.lookup(mac(2)), null, 'an unplugged port takes its MACs with it');
  assert.equal(sw.portCount, 2);
});

test('switch: a port whose NIC does not take frames drops past its queue limit, and the others carry on', () => {
  const sw = new EthSwitch();
  const a = new SwitchLink(sw, 'a');
  const slow = new SwitchLink(sw, 'slow', 3);
  const c = new SwitchLink(sw, 'c');
  let room = 0;
  const got: number[] = [];
  slow.attach({ canReceive: () => room > 0, receive: (f) => (room--, got.push(tagOf(f))) }, () => {});
  const nc = nic(c);
  for (let i = 0; i < 10; i++) a.send(frame(BCAST, mac(1), i));
  slow.deliver();
  assert.deepEqual(got, [], 'no room: nothing handed over');
  assert.equal(nc.take().length, 10);
  room = 100;
  slow.deliver();
  assert.deepEqual(got, [0, 1, 2], 'the first three waited; the rest were dropped');
  assert.deepEqual(slow.port.stats, { in: 0, out: 3, dropped: 7 });
  assert.equal(a.port.stats.in, 10);
});

test('switch: two switches are two networks: nothing crosses', () => {
  const s1 = new EthSwitch();
  const s2 = new EthSwitch();
  const a = new SwitchLink(s1, 'a');
  const b = new SwitchLink(s1, 'b');
  const x = new SwitchLink(s2, 'x');
  const [na, nb, nx] = [a, b, x].map(nic);
  a.send(frame(BCAST, mac(1), 1));
  a.send(frame(mac(9), mac(1), 2));
  x.send(frame(BCAST, mac(9), 3));
  x.send(frame(mac(1), mac(9), 4));
  assert.deepEqual([na.take(), nb.take(), nx.take()], [[], [1, 2], []]);
});

/** A DHCP DISCOVER from `m`, as udhcpc sends it. */
function discover(m: Uint8Array, xid: number): Uint8Array {
  const p = new Uint8Array(300);
  p[0] = 1;
  p[1] = 1;
  p[2] = 6;
  put32(p, 4, xid);
  p.set(m, 28);
  put32(p, 236, 0x63825363);
  p.set([53, 1, 1, 255], 240);
  return buildIp4(BCAST, m, 0, 0xffffffff, PROTO_UDP, buildUdp(0, 68, 0xffffffff, 67, p));
}

/** The DHCP options of a reply frame, by code. */
function dhcpOptions(f: Uint8Array): { yiaddr: number; opts: Map<number, Uint8Array> } {
  const ip = parseIp4(f);
  assert.ok(ip && ip.proto === PROTO_UDP && get16(f, ip.start + 2) === 68, 'a UDP frame to the DHCP client port');
  const p = f.subarray(ip.start + 8, ip.end);
  const opts = new Map<number, Uint8Array>();
  for (let i = 240; i < p.length && p[i] !== 255; ) {
    if (p[i] === 0) i++;
    else {
      opts.set(p[i], p.subarray(i + 2, i + 2 + p[i + 1]));
      i += 2 + p[i + 1];
    }
  }
  return { yiaddr: get32(p, 16), opts };
}

test("switch DHCP: leases from the subnet's second address, one per MAC, no router or DNS unless asked", () => {
  const sw = new EthSwitch();
  const dhcp = new SwitchDhcp(sw, parseSwitchDhcp('10.0.3.77/24'));
  const a = new SwitchLink(sw, 'a');
  const b = new SwitchLink(sw, 'b');
  const [na, nb] = [a, b].map(nic);
  a.send(discover(mac(1), 11));
  b.send(discover(mac(2), 22));
  a.deliver();
  b.deliver();
  const toClient = (f: Uint8Array) => {
    const ip = parseIp4(f);
    return ip !== null && ip.proto === PROTO_UDP && get16(f, ip.start + 2) === 68;
  };
  const offerA = na.got.find(toClient) as Uint8Array;
  const offerB = nb.got.find(toClient) as Uint8Array;
  const oa = dhcpOptions(offerA);
  const ob = dhcpOptions(offerB);
  assert.equal(oa.yiaddr, ip4('10.0.3.2'));
  assert.equal(ob.yiaddr, ip4('10.0.3.3'));
  assert.deepEqual(oa.opts.get(53), Uint8Array.from([2]), 'an OFFER');
  assert.deepEqual(oa.opts.get(1), Uint8Array.from([255, 255, 255, 0]));
  assert.deepEqual(oa.opts.get(54), Uint8Array.from([10, 0, 3, 1]), 'the server is the first address');
  assert.equal(oa.opts.has(3), false, 'no router');
  assert.equal(oa.opts.has(6), false, 'no DNS server');
  assert.deepEqual(offerA.subarray(0, 6), mac(1), "the reply goes to the client's MAC only");
  assert.equal(nb.got.filter(toClient).length, 1, "B does not see A's offer");
  // ARP for the server's address is answered
  const arp = new Uint8Array(42);
  arp.set(BCAST, 0);
  arp.set(mac(1), 6);
  put16(arp, 12, 0x0806);
  arp.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
  arp.set(mac(1), 22);
  put32(arp, 28, ip4('10.0.3.2'));
  put32(arp, 38, ip4('10.0.3.1'));
  na.got.length = 0;
  a.send(arp);
  a.deliver();
  const ans = na.got.find((f) => get16(f, 12) === 0x0806 && get16(f, 20) === 2) as Uint8Array;
  assert.ok(ans, 'an ARP reply');
  assert.deepEqual(ans.subarray(22, 28), dhcp.mac);
  assert.equal(get32(ans, 28), ip4('10.0.3.1'));

  const withRouter = parseSwitchDhcp('192.168.5.0/24,router=192.168.5.254,dns=192.168.5.254');
  assert.equal(withRouter.router, ip4('192.168.5.254'));
  assert.throws(() => parseSwitchDhcp('10.0.3.0'), /is not a subnet like 10\.0\.3\.0\/24/);
  assert.throws(() => parseSwitchDhcp('10.0.3.0/31'), /prefix length must be 8\.\.30/);
  assert.throws(() => parseSwitchDhcp('10.0.3.0/24,router=10.0.4.1'), /router 10\.0\.4\.1 is outside 10\.0\.3\.0\/24/);
  assert.throws(() => parseSwitchDhcp('10.0.3.0/24,gw=10.0.3.1'), /the DHCP options are router=ADDR and dns=ADDR/);
});

test('switch DHCP: a full pool answers nothing', () => {
  const sw = new EthSwitch();
  new SwitchDhcp(sw, parseSwitchDhcp('10.9.0.0/30')); // .1 the server, .2 the only lease
  const a = new SwitchLink(sw, 'a');
  const na = nic(a);
  a.send(discover(mac(1), 1));
  a.send(discover(mac(2), 2));
  a.deliver();
  assert.deepEqual(na.got.map((f) => dhcpOptions(f).yiaddr), [ip4('10.9.0.2')]);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** A VM's NIC in "another process": a SocketNet connected to the switch's socket. */
async function plug(at: StreamAddr) {
  const link = new SocketNet(nodeNetHost, { connect: at });
  const n = nic(link);
  await link.start();
  for (let i = 0; i < 300 && !link.connected; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(link.connected, 'connected to the switch');
  return { link, n };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
}

for (const kind of ['unix', 'tcp'] as const) {
  test(`switch over a ${kind === 'unix' ? 'UNIX socket' : 'loopback TCP port'}: VMs in other processes see each other; one on another switch sees nothing`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvm-sw-'));
    const at1: StreamAddr = kind === 'unix' ? { path: join(dir, 'one.sock') } : { addr: '127.0.0.1', port: await freePort() };
    const at2: StreamAddr = kind === 'unix' ? { path: join(dir, 'two.sock') } : { addr: '127.0.0.1', port: await freePort() };
    const s1 = new EthSwitch();
    const s2 = new EthSwitch();
    const srv1 = await serveSwitch(s1, nodeNetHost, at1);
    const srv2 = await serveSwitch(s2, nodeNetHost, at2);
    const local = new SwitchLink(s1, 'in-process VM');
    const nl = nic(local);
    const a = await plug(at1);
    const b = await plug(at1);
    const x = await plug(at2);
    await until('three ports on switch one', () => s1.portCount === 3);
    try {
      a.link.send(frame(BCAST, mac(1), 1));
      await until('b got the broadcast', () => (b.link.deliver(), b.n.got.length > 0));
      assert.deepEqual(b.n.take(), [1]);
      assert.deepEqual(nl.take(), [1]);
      const big = frame(mac(1), mac(2), 2, 9000); // a jumbo frame, as TSO can hand over
      for (let i = 18; i < big.length; i++) big[i] = (i * 13) & 0xff;
      b.link.send(big);
      await until('a got the unicast', () => (a.link.deliver(), a.n.got.length > 0));
      assert.deepEqual(a.n.got.splice(0), [big]);
      local.send(frame(mac(2), mac(3), 3));
      await until('b got the in-process frame', () => (b.link.deliver(), b.n.got.length > 0));
      assert.deepEqual(b.n.take(), [3]);
      x.link.send(frame(BCAST, mac(9), 4));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual([a.n.take(), b.n.take(), nl.take(), x.n.take()], [[], [], [], []], 'nothing crosses between the switches');
      // a VM that leaves takes its port away
      a.link.close();
      await until('the port left', () => s1.portCount === 2);
      assert.equal(s1.lookup(mac(1)), null);
    } finally {
      for (const p of [a, b, x]) p.link.close();
      srv1.close();
      srv2.close();
    }
  });
}

test('switch socket: a stale socket file is replaced, a live one or a plain file is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-sw-'));
  const path = join(dir, 'sw.sock');
  const first = await serveSwitch(new EthSwitch(), nodeNetHost, { path });
  await assert.rejects(serveSwitch(new EthSwitch(), nodeNetHost, { path }), /something is already listening on .*sw\.sock \(another switch\?\)/);
  first.close();
  // a socket file left behind by a killed process: make one by listening without closing cleanly
  const { spawnSync } = await import('node:child_process');
  const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.equal(killed.signal, 'SIGKILL');
  const again = await serveSwitch(new EthSwitch(), nodeNetHost, { path });
  again.close();
  const plain = join(dir, 'notes.txt');
  writeFileSync(plain, 'keep me');
  await assert.rejects(serveSwitch(new EthSwitch(), nodeNetHost, { path: plain }), /notes\.txt exists and is not a socket/);
});

test('switch socket: a VM whose switch restarts reconnects by itself, and one that sends garbage is dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-sw-'));
  const path = join(dir, 'sw.sock');
  const logs: string[] = [];
  const sw1 = new EthSwitch();
  let srv = await serveSwitch(sw1, nodeNetHost, { path }, (l) => logs.push(l));
  const a = await plug({ path });
  a.link.onLog = (l) => logs.push(l);
  await until('a on the first switch', () => sw1.portCount === 1);
  srv.close(); // the switch process ends
  await until('a noticed', () => !a.link.connected);
  const sw2 = new EthSwitch();
  srv = await serveSwitch(sw2, nodeNetHost, { path }, (l) => logs.push(l));
  await until('a reconnected to the new switch', () => a.link.connected && sw2.portCount === 1);
  const b = await plug({ path });
  try {
    b.link.send(frame(BCAST, mac(2), 42));
    await until('a hears b through the new switch', () => (a.link.deliver(), a.n.got.length > 0));
    assert.deepEqual(a.n.take(), [42]);
    assert.ok(logs.some((l) => /lost unix:.*sw\.sock; reconnecting/.test(l)), logs.join('\n'));
    // a peer that does not speak the framing (a 2 GiB "frame") is cut off; the others stay
    const { connect } = await import('node:net');
    const bad = connect(path);
    await new Promise<void>((r) => bad.once('connect', () => r()));
    await until('three ports', () => sw2.portCount === 3);
    bad.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await until('the garbage peer was dropped', () => sw2.portCount === 2);
    assert.ok(logs.some((l) => /sent a 2147483647-byte frame .*dropping it/.test(l)), logs.join('\n'));
    bad.destroy();
  } finally {
    a.link.close();
    b.link.close();
    srv.close();
  }
});

test("named networks: a network directory others can write is refused (a planted fake switch), one's own is used", async () => {
  const { chmodSync } = await import('node:fs');
  const { checkNetworkDir, networkSocketPath } = await import('../../src/vmm/netspec.js');
  const { openNetworkSwitch } = await import('../../src/vmm/switch.js');
  const saved = process.env.TSVM_NET_DIR;
  const d = mkdtempSync(join(tmpdir(), 'tsvm-netdir-'));
  try {
    process.env.TSVM_NET_DIR = join(d, 'net');
    const sw = await openNetworkSwitch('lab'); // made, mode 0700
    assert.equal(networkSocketPath('lab'), join(d, 'net', 'lab.sock'));
    const client = await plug({ path: networkSocketPath('lab') });
    client.link.close();
    sw.close();
    chmodSync(join(d, 'net'), 0o777);
    assert.throws(() => checkNetworkDir(), /is not a private directory of this user .*set TSVM_NET_DIR/);
    await assert.rejects(openNetworkSwitch('lab'), /is not a private directory/);
  } finally {
    if (saved === undefined) delete process.env.TSVM_NET_DIR;
    else process.env.TSVM_NET_DIR = saved;
  }
});

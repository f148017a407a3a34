import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo } from 'node:net';
import { nodeNetHost } from '../../src/host/node/net.js';
import { UserNet, GATEWAY, GUEST_FIRST, DNS_SERVER, parseHostForward } from '../../src/net/slirp.js';
import { buildIp4, buildUdp, csumAdd, csumFinish, get16, get32, ip4, parseIp4, pseudoSum, put16, put32, PROTO_TCP, PROTO_UDP, PROTO_ICMP, BROADCAST_MAC } from '../../src/net/wire.js';
import { DumpBackend } from '../../src/net/dump.js';

const GUEST_MAC = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const GW_MAC = Uint8Array.from([0x52, 0x55, 0x0a, 0, 2, 2]);

function harness(opts = {}) {
  const net = new UserNet(nodeNetHost, opts);
  const got: Uint8Array[] = [];
  // wake asks for a slice boundary: like the machine, deliver soon after
  net.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => setImmediate(() => net.deliver()));
  const waitFor = async (pred: (f: Uint8Array) => boolean, what: string): Promise<Uint8Array> => {
    for (let i = 0; i < 400; i++) {
      net.deliver();
      const k = got.findIndex(pred);
      if (k >= 0) return got.splice(k, 1)[0];
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.fail(`no frame came: ${what}`);
  };
  return { net, got, waitFor };
}

function tcpSeg(sport: number, dport: number, seq: number, ack: number, flags: number, data = new Uint8Array(0), dst = GATEWAY): Uint8Array {
  const t = new Uint8Array(20 + data.length);
  put16(t, 0, sport);
  put16(t, 2, dport);
  put32(t, 4, seq);
  put32(t, 8, ack);
  t[12] = 5 << 4;
  t[13] = flags;
  put16(t, 14, 65535);
  t.set(data, 20);
  put16(t, 16, csumFinish(csumAdd(t, 0, t.length, pseudoSum(GUEST_FIRST, dst, PROTO_TCP, t.length))));
  return buildIp4(GW_MAC, GUEST_MAC, GUEST_FIRST, dst, PROTO_TCP, t);
}

const tcpOf = (f: Uint8Array) => {
  const ip = parseIp4(f);
  if (!ip || ip.proto !== PROTO_TCP) return null;
  const o = ip.start;
  return { sport: get16(f, o), dport: get16(f, o + 2), seq: get32(f, o + 4), ack: get32(f, o + 8), flags: f[o + 13], data: f.slice(o + (f[o + 12] >>> 4) * 4, ip.end), ok: csumFinish(csumAdd(f, o, ip.end, pseudoSum(ip.src, ip.dst, PROTO_TCP, ip.end - o))) === 0 };
};

test('user net: DHCP offers 10.0.2.15 with the gateway and DNS server', async () => {
  const { net, waitFor } = harness();
  const d = new Uint8Array(300);
  d[0] = 1; d[1] = 1; d[2] = 6;
  put32(d, 4, 0x1234);
  d.set(GUEST_MAC, 28);
  put32(d, 236, 0x63825363);
  d.set([53, 1, 1, 255], 240);
  net.send(buildIp4(BROADCAST_MAC, GUEST_MAC, 0, 0xffffffff, PROTO_UDP, buildUdp(0, 68, 0xffffffff, 67, d)));
  const f = await waitFor((f) => parseIp4(f)?.proto === PROTO_UDP, 'DHCP offer');
  const ip = parseIp4(f)!;
  const p = f.subarray(ip.start + 8);
  assert.equal(get32(p, 4), 0x1234);
  assert.equal(get32(p, 16), GUEST_FIRST);
  const opts = Array.from(p.subarray(240, 280));
  assert.deepEqual(opts.slice(0, 3), [53, 1, 2], 'an OFFER');
  assert.ok(Buffer.from(p).includes(Buffer.from([3, 4, 10, 0, 2, 2])), 'router 10.0.2.2');
  assert.ok(Buffer.from(p).includes(Buffer.from([6, 4, 10, 0, 2, 3])), 'DNS 10.0.2.3');
  net.close();
});

test('user net: DNS answers localhost from the host resolver as the gateway; ICMP echo to the gateway', async () => {
  const { net, waitFor } = harness();
  const q = new Uint8Array([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, ...Buffer.from('localhost'), 0, 0, 1, 0, 1]);
  net.send(buildIp4(GW_MAC, GUEST_MAC, GUEST_FIRST, DNS_SERVER, PROTO_UDP, buildUdp(GUEST_FIRST, 5353, DNS_SERVER, 53, q)));
  const f = await waitFor((f) => parseIp4(f)?.proto === PROTO_UDP, 'DNS answer');
  const ip = parseIp4(f)!;
  const a = f.subarray(ip.start + 8, ip.end);
  assert.equal(get16(a, 0), 0xabcd);
  assert.equal(get16(a, 2) & 0xf, 0, 'NOERROR');
  assert.ok(get16(a, 6) >= 1, 'at least one answer');
  assert.equal(get32(a, a.length - 4), GATEWAY, "the host's loopback is the gateway to the guest");
  const echo = new Uint8Array(16);
  echo[0] = 8;
  put16(echo, 4, 7);
  put16(echo, 2, csumFinish(csumAdd(echo, 0, 16)));
  net.send(buildIp4(GW_MAC, GUEST_MAC, GUEST_FIRST, GATEWAY, PROTO_ICMP, echo));
  const r = await waitFor((f) => parseIp4(f)?.proto === PROTO_ICMP, 'echo reply');
  assert.equal(r[parseIp4(r)!.start], 0);
  net.close();
});

test('user net: a guest TCP connection to 10.0.2.2 reaches a 127.0.0.1 server; data both ways, FIN; refused port gets RST', async () => {
  const server = createServer((s) => {
    s.on('data', (d) => s.end('reply:' + d.toString()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const { net, waitFor } = harness();
  const isTcp = (f: Uint8Array) => tcpOf(f) !== null;
  net.send(tcpSeg(40000, port, 1000, 0, 0x02));
  const synack = tcpOf(await waitFor(isTcp, 'SYN-ACK'))!;
  assert.equal(synack.flags, 0x12);
  assert.equal(synack.ack, 1001);
  assert.ok(synack.ok, 'checksum');
  let ours = (synack.seq + 1) >>> 0;
  net.send(tcpSeg(40000, port, 1001, ours, 0x10));
  net.send(tcpSeg(40000, port, 1001, ours, 0x18, new TextEncoder().encode('hello')));
  let text = '';
  let fin = false;
  while (!fin) {
    const s = tcpOf(await waitFor(isTcp, 'reply data and FIN'))!;
    if (s.data.length) {
      assert.equal(s.seq, ours);
      text += Buffer.from(s.data).toString();
      ours = (ours + s.data.length) >>> 0;
    }
    if (s.flags & 1) {
      fin = true;
      ours = (ours + 1) >>> 0;
    }
  }
  assert.equal(text, 'reply:hello');
  net.send(tcpSeg(40000, port, 1006, ours, 0x11));
  await waitFor((f) => tcpOf(f)?.ack === 1007, 'ACK of our FIN');
  for (let i = 0; i < 50 && net.connections > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(net.connections, 0, 'the connection is forgotten after both FINs');
  // a port nobody listens on
  server.close();
  await new Promise((r) => setTimeout(r, 20));
  net.send(tcpSeg(40001, port, 5000, 0, 0x02));
  const rst = tcpOf(await waitFor((f) => tcpOf(f)?.dport === 40001, 'RST'))!;
  assert.ok(rst.flags & 0x04, 'RST for a refused connection');
  net.close();
});

test('user net: hostfwd opens a connection to the guest; restrict=on refuses guest connections', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const hostPort = (probe.address() as AddressInfo).port;
  probe.close();
  const fwd = parseHostForward(`tcp:127.0.0.1:${hostPort}-:80`);
  assert.throws(() => parseHostForward('tcp:8080:80'), /form/);
  const { net, waitFor } = harness({ hostfwd: [fwd], restrict: true });
  await net.start();
  const client = connect(hostPort, '127.0.0.1');
  let reply = '';
  client.on('data', (d) => (reply += d.toString()));
  const syn = tcpOf(await waitFor((f) => tcpOf(f) !== null, 'SYN to the guest'))!;
  assert.equal(syn.flags, 0x02);
  assert.equal(syn.dport, 80);
  net.send(tcpSeg(80, syn.sport, 7000, syn.seq + 1, 0x12));
  await waitFor((f) => tcpOf(f)?.flags === 0x10, 'ACK of the SYN-ACK');
  net.send(tcpSeg(80, syn.sport, 7001, syn.seq + 1, 0x18, new TextEncoder().encode('from guest')));
  for (let i = 0; i < 100 && reply === ''; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(reply, 'from guest');
  client.destroy();
  // restricted: a guest SYN to the gateway is refused at once
  net.send(tcpSeg(40002, 22, 1, 0, 0x02));
  const r = await waitFor((f) => tcpOf(f)?.dport === 40002, 'RST');
  assert.ok(tcpOf(r)!.flags & 0x04);
  net.close();
});

test('filter-dump: a pcap file header and one record per frame each way', () => {
  const chunks: Uint8Array[] = [];
  const inner = new UserNet(nodeNetHost);
  const d = new DumpBackend(inner, { write: (b) => chunks.push(b.slice()), close() {} }, () => 1500);
  const got: Uint8Array[] = [];
  d.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => {});
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  arp.set(GUEST_MAC, 6);
  put16(arp, 12, 0x0806);
  put16(arp, 14, 1); put16(arp, 16, 0x0800); arp[18] = 6; arp[19] = 4; put16(arp, 20, 1);
  arp.set(GUEST_MAC, 22); put32(arp, 28, GUEST_FIRST); put32(arp, 38, ip4('10.0.2.2'));
  d.send(arp);
  d.deliver();
  assert.equal(got.length, 1, 'ARP reply');
  assert.equal(chunks.length, 3);
  assert.equal(new DataView(chunks[0].buffer).getUint32(0, true), 0xa1b2c3d4);
  assert.equal(new DataView(chunks[1].buffer).getUint32(8, true), 42);
  assert.equal(new DataView(chunks[1].buffer).getUint32(4, true), 500000, 'microseconds');
  d.close();
});

/** A SYN with MSS 1460 and, when `ws` >= 0, the window-scale option (as Linux sends it). */
function synWithOptions(sport: number, dport: number, seq: number, ws: number): Uint8Array {
  const opt = ws >= 0 ? [2, 4, 0x05, 0xb4, 1, 3, 3, ws] : [2, 4, 0x05, 0xb4];
  const t = new Uint8Array(20 + opt.length);
  put16(t, 0, sport);
  put16(t, 2, dport);
  put32(t, 4, seq);
  t[12] = ((20 + opt.length) / 4) << 4;
  t[13] = 0x02;
  put16(t, 14, 65535);
  t.set(opt, 20);
  put16(t, 16, csumFinish(csumAdd(t, 0, t.length, pseudoSum(GUEST_FIRST, GATEWAY, PROTO_TCP, t.length))));
  return buildIp4(GW_MAC, GUEST_MAC, GUEST_FIRST, GATEWAY, PROTO_TCP, t);
}

/** The TCP options of a segment: kind -> its value bytes. */
function tcpOptions(f: Uint8Array): Map<number, number[]> {
  const ip = parseIp4(f)!;
  const o = ip.start;
  const end = o + (f[o + 12] >>> 4) * 4;
  const m = new Map<number, number[]>();
  for (let i = o + 20; i < end; ) {
    if (f[i] === 0) break;
    if (f[i] === 1) {
      i++;
      continue;
    }
    m.set(f[i], [...f.subarray(i + 2, i + f[i + 1])]);
    i += f[i + 1];
  }
  return m;
}

test('user net TCP: window scaling (RFC 7323) when the guest offers it, one ACK per delivery for many segments, large receives to a NIC that takes them', async () => {
  const BIG = 300_000;
  const received: Buffer[] = [];
  const server = createServer((s) => {
    s.on('data', (d) => {
      received.push(d);
      if (Buffer.concat(received).length === 6000) s.end(Buffer.alloc(BIG, 0x61));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  // a NIC taking large receives of up to 64000 payload bytes
  const net = new UserNet(nodeNetHost, {});
  const got: { f: Uint8Array; gso: number }[] = [];
  net.attach({ canReceive: () => true, receive: (f, gso) => got.push({ f, gso: gso ?? 0 }), largeReceive: () => 64000 }, () => {});
  const next = async (what: string) => {
    for (let i = 0; i < 400; i++) {
      net.deliver();
      if (got.length) return got.shift()!;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.fail(`no frame came: ${what}`);
  };
  net.send(synWithOptions(41000, port, 1000, 7));
  const synack = await next('SYN-ACK');
  const opts = tcpOptions(synack.f);
  assert.deepEqual(opts.get(3), [5], 'our window scale is 5');
  assert.deepEqual(opts.get(2), [0x05, 0xb4], 'MSS 1460');
  const sa = tcpOf(synack.f)!;
  const ours = (sa.seq + 1) >>> 0;
  // four data segments in one slice: the NAT answers with one ACK at the next delivery
  let seq = 1001;
  for (let i = 0; i < 4; i++) {
    net.send(tcpSeg(41000, port, seq, ours, 0x10, new Uint8Array(1500).fill(0x30 + i)));
    seq += 1500;
  }
  assert.equal(got.length, 0, 'nothing before the slice boundary');
  net.deliver();
  const ackFrames = got.splice(0);
  assert.equal(ackFrames.length, 1, 'one ACK for four segments');
  assert.equal(tcpOf(ackFrames[0].f)!.ack, seq);
  // the window field is scaled by 2^5: more than 64 KiB open, at most 1 MiB
  const wfield = get16(ackFrames[0].f, parseIp4(ackFrames[0].f)!.start + 14);
  assert.ok(wfield << 5 > 65535 && wfield << 5 <= 1 << 20, `window field ${wfield}`);
  // the reply comes in large receives (gso = the guest's MSS) within the guest's scaled window (65535 << 7)
  let bytes = 0;
  let large = 0;
  let ack = seq;
  while (bytes < BIG) {
    const g = await next('reply data');
    const s = tcpOf(g.f)!;
    assert.ok(s.ok, 'checksum of a large receive');
    if (!s.data.length) continue;
    assert.equal(s.seq, (ours + bytes) >>> 0);
    if (s.data.length > 1460) {
      large++;
      assert.equal(g.gso, 1460);
      assert.ok(s.data.length <= 64000);
    } else assert.equal(g.gso, 0);
    bytes += s.data.length;
    net.send(tcpSeg(41000, port, ack, (ours + bytes) >>> 0, 0x10));
  }
  assert.equal(bytes, BIG);
  assert.ok(large > 0, 'large receives were used');
  assert.equal(Buffer.concat(received).length, 6000);
  server.close();
  net.close();
});

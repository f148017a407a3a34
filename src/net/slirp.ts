/**
 * User-mode networking (what QEMU calls slirp): a NAT that needs no host
 * privileges. The guest sees a router on 10.0.2.0/24 (the addresses QEMU
 * uses): the gateway 10.0.2.2, which is also the host's loopback, a DNS
 * server 10.0.2.3 answering from the host's resolver, and a DHCP server
 * giving the guest 10.0.2.15. The guest's TCP connections end in this NAT's
 * own TCP endpoint (tcp.ts) and continue as host sockets; its UDP datagrams
 * go out through host UDP sockets, one per guest port. Forwarded host ports
 * (hostfwd) open connections towards the guest. With restrict=on the guest
 * reaches only ARP, DHCP, ICMP echo to the gateway and connections that came
 * in through hostfwd.
 *
 * It implements the NetBackend seam (src/devices/backends.ts): frames from
 * the NIC arrive through send(); frames for the guest wait in a queue that
 * the machine drains with deliver() at slice boundaries.
 *
 * Not done: IP fragments (dropped), ICMP to hosts other than the gateway
 * (dropped; QEMU uses host ping sockets), UDP host forwards, IPv6.
 */
import type { AcceptedStream, Closable, HostDatagram, NetHost } from './host.js';
import { DhcpServer, DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from './dhcp.js';
import { buildAnswer, DNS_PORT, needsLookup, parseQuery } from './dns.js';
import { OUR_MSS, TcpConn, TcpFlag, type TcpOwner } from './tcp.js';
import {
  BROADCAST_MAC, buildIp4, buildUdp, csumAdd, csumFinish, ETH_HDR, ETHERTYPE_ARP, get16, get32, ip4, ip4Frame, ip4Text, IP_HDR, l4ChecksumOk, parseIp4, pseudoSum,
  PROTO_ICMP, PROTO_TCP, PROTO_UDP, put16, put32, type Ip4, type Ip4Packet,
} from './wire.js';
import { parseHostForward, type HostForward } from './hostfwd.js';

export { parseHostForward, type HostForward };

export interface UserNetOptions {
  hostfwd?: HostForward[];
  restrict?: boolean;
}

/** The NIC side of the seam, as the NAT needs it (matches devices/backends NetPort). */
interface Port {
  canReceive(): boolean;
  receive(frame: Uint8Array, gso?: number): void;
  largeReceive?(): number;
}

export const NET = ip4('10.0.2.0');
export const NETMASK = ip4('255.255.255.0');
export const GATEWAY = ip4('10.0.2.2');
export const DNS_SERVER = ip4('10.0.2.3');
export const GUEST_FIRST = ip4('10.0.2.15');
/** The router's MAC (QEMU's 52:55:0a:00:02:02). */
export const GATEWAY_MAC = Uint8Array.from([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
/** Frames waiting for the guest beyond this are dropped, as a full wire would. */
const QUEUE_MAX = 4096;
const UDP_IDLE_MS = 60_000;

export class UserNet implements TcpOwner {
  private _port: Port | null = null;
  private _queue: Uint8Array[] = [];
  /** Per queued frame: the segment size of a large receive, else 0. */
  private _queueGso: number[] = [];
  /** Connections whose ACK waits for the next slice boundary. */
  private _acks: TcpConn[] = [];
  /** Asks the machine for a deliver() at the next slice boundary (from attach()). */
  private _wake: () => void = () => {};
  private _guestMac: Uint8Array | null = null;
  private readonly _dhcp = new DhcpServer({ server: GATEWAY, router: GATEWAY, dns: DNS_SERVER, netmask: NETMASK, first: GUEST_FIRST, leaseSeconds: 86400 });
  private readonly _tcp = new Map<string, TcpConn>();
  private readonly _udp = new Map<number, { sock: HostDatagram; last: number; timer: unknown }>();
  private readonly _listeners: Closable[] = [];
  private _iss = 0x1000;
  private _nextPort = 49152;
  private _closed = false;
  /** Frames the guest sent and received, for tests and logs. */
  readonly stats = { fromGuest: 0, toGuest: 0, dropped: 0 };
  /** Host-side problems (a failed connect, a dropped frame), one line each. */
  onLog: (line: string) => void = () => {};

  constructor(
    private readonly _host: NetHost,
    readonly opts: UserNetOptions = {},
  ) {}

  /** Open the host forwards' listening sockets; rejects with a clear message (a port in use). */
  async start(): Promise<void> {
    for (const f of this.opts.hostfwd ?? []) {
      const l = await this._host.listen(f.hostAddr, f.hostPort, (s) => this._forwarded(f, s));
      this._listeners.push(l);
    }
  }

  // ---- the NetBackend seam ----

  attach(port: Port, wake: () => void): void {
    this._port = port;
    this._wake = wake;
  }

  deliver(): void {
    const p = this._port;
    if (!p) return;
    const acks = this._acks;
    if (acks.length) {
      this._acks = [];
      for (let i = 0; i < acks.length; i++) acks[i].flushAck();
    }
    let n = 0;
    const q = this._queue;
    const g = this._queueGso;
    while (n < q.length && p.canReceive()) {
      const gso = g[n];
      if (gso) p.receive(q[n], gso);
      else p.receive(q[n]);
      n++;
    }
    if (n) {
      q.splice(0, n);
      g.splice(0, n);
    }
  }

  status(): { kind: string; queued: number; dropped: number } {
    return { kind: `user${this.opts.restrict ? ',restrict=on' : ''}`, queued: this._queue.length, dropped: this.stats.dropped };
  }

  close(): void {
    this._closed = true;
    for (const l of this._listeners) l.close();
    for (const c of [...this._tcp.values()]) c.abort();
    for (const u of this._udp.values()) {
      u.sock.close();
      this._host.clearTimer(u.timer);
    }
    this._udp.clear();
  }

  send(f: Uint8Array): void {
    this.stats.fromGuest++;
    if (f.length < ETH_HDR) return;
    if (!(f[6] & 1)) this._guestMac = f.slice(6, 12);
    const type = get16(f, 12);
    if (type === ETHERTYPE_ARP) this._arp(f);
    else {
      const ip = parseIp4(f);
      if (!ip) return;
      if (ip.proto === PROTO_UDP) this._udpIn(f, ip);
      else if (ip.proto === PROTO_TCP) this._tcpIn(f, ip);
      else if (ip.proto === PROTO_ICMP) this._icmpIn(f, ip);
    }
  }

  private _toGuest(frame: Uint8Array, gso = 0): void {
    if (this._closed) return;
    if (this._queue.length >= QUEUE_MAX) {
      this.stats.dropped++;
      return;
    }
    this.stats.toGuest++;
    this._queue.push(frame);
    this._queueGso.push(gso);
    // the first frame waiting asks for a slice boundary; later ones ride with it (a NIC
    // without room wakes the machine itself when the guest posts buffers)
    if (this._queue.length === 1) this._wake();
  }

  private _ipToGuest(dst: Ip4, src: Ip4, proto: number, payload: Uint8Array): void {
    this._toGuest(buildIp4(this._guestMac ?? BROADCAST_MAC, GATEWAY_MAC, src, dst, proto, payload));
  }

  // ---- ARP: the gateway and DNS addresses answer with the router's MAC ----

  private _arp(f: Uint8Array): void {
    if (f.length < ETH_HDR + 28) return;
    const o = ETH_HDR;
    if (get16(f, o) !== 1 || get16(f, o + 2) !== 0x0800 || get16(f, o + 6) !== 1) return; // Ethernet/IPv4 request
    const target = get32(f, o + 24);
    if (target !== GATEWAY && target !== DNS_SERVER) return;
    const r = new Uint8Array(ETH_HDR + 28);
    r.set(f.subarray(6, 12), 0);
    r.set(GATEWAY_MAC, 6);
    put16(r, 12, ETHERTYPE_ARP);
    r.set(f.subarray(o, o + 6), o);
    put16(r, o + 6, 2);
    r.set(GATEWAY_MAC, o + 8);
    put32(r, o + 14, target);
    r.set(f.subarray(o + 8, o + 18), o + 18); // the asker's MAC and IP
    this._toGuest(r);
  }

  // ---- ICMP: echo requests to the gateway or DNS address are answered ----

  private _icmpIn(f: Uint8Array, ip: Ip4Packet): void {
    if (ip.dst !== GATEWAY && ip.dst !== DNS_SERVER) return;
    if (ip.end - ip.start < 8 || f[ip.start] !== 8) return;
    if (csumFinish(csumAdd(f, ip.start, ip.end)) !== 0) return;
    const reply = f.slice(ip.start, ip.end);
    reply[0] = 0;
    put16(reply, 2, 0);
    put16(reply, 2, csumFinish(csumAdd(reply, 0, reply.length)));
    this._ipToGuest(ip.src, ip.dst, PROTO_ICMP, reply);
  }

  // ---- UDP: DHCP and DNS here, the rest through host sockets ----

  private _udpIn(f: Uint8Array, ip: Ip4Packet): void {
    if (ip.end - ip.start < 8 || !l4ChecksumOk(f, ip)) return;
    const sport = get16(f, ip.start);
    const dport = get16(f, ip.start + 2);
    const ulen = get16(f, ip.start + 4);
    if (ulen < 8 || ip.start + ulen > ip.end) return;
    const data = f.subarray(ip.start + 8, ip.start + ulen);
    if (dport === DHCP_SERVER_PORT) {
      const reply = this._dhcp.handle(data);
      if (reply) {
        const to = 0xffffffff;
        this._toGuest(buildIp4(BROADCAST_MAC, GATEWAY_MAC, GATEWAY, to, PROTO_UDP, buildUdp(GATEWAY, DHCP_SERVER_PORT, to, DHCP_CLIENT_PORT, reply)));
      }
      return;
    }
    if (this.opts.restrict) return;
    if (ip.dst === DNS_SERVER && dport === DNS_PORT) {
      this._dns(ip.src, sport, data);
      return;
    }
    const hostAddr = this._hostAddress(ip.dst);
    if (hostAddr === null) return;
    let u = this._udp.get(sport);
    if (!u) {
      const guest = ip.src;
      const sock = this._host.udp((d, addr, port) => {
        const src = addr === '127.0.0.1' ? GATEWAY : safeIp4(addr);
        if (src === null) return;
        this._ipToGuest(guest, src, PROTO_UDP, buildUdp(src, port, guest, sport, d));
      });
      u = { sock, last: 0, timer: null };
      this._udp.set(sport, u);
      this._sweepUdp(sport);
    }
    u.last = Date.now();
    u.sock.send(data.slice(), hostAddr, dport);
  }

  private _sweepUdp(sport: number): void {
    const u = this._udp.get(sport);
    if (!u) return;
    u.timer = this._host.setTimer(UDP_IDLE_MS, () => {
      if (Date.now() - u.last >= UDP_IDLE_MS) {
        u.sock.close();
        this._udp.delete(sport);
      } else this._sweepUdp(sport);
    });
  }

  private _dns(guest: Ip4, sport: number, data: Uint8Array): void {
    const q = parseQuery(data);
    if (!q) return;
    const answer = (addrs: Ip4[] | null | undefined) => this._ipToGuest(guest, DNS_SERVER, PROTO_UDP, buildUdp(DNS_SERVER, DNS_PORT, guest, sport, buildAnswer(q, addrs)));
    if (!needsLookup(q)) {
      answer([]);
      return;
    }
    this._host.lookup(q.name, (addrs) => {
      if (!addrs) answer(addrs);
      // the host's loopback is the gateway to the guest (127.0.0.1 is the guest's own loopback)
      else answer(addrs.map((a) => (a.startsWith('127.') ? GATEWAY : safeIp4(a))).filter((a): a is Ip4 => a !== null));
    });
  }

  /** Where a guest destination is on the host: the gateway is the loopback; other virtual addresses are nowhere. */
  private _hostAddress(dst: Ip4): string | null {
    if (dst === GATEWAY) return '127.0.0.1';
    if ((dst & NETMASK) === NET) return null;
    if (dst === 0xffffffff || dst >>> 28 === 0xe || dst >>> 24 === 127 || dst === 0) return null;
    return ip4Text(dst);
  }

  // ---- TCP ----

  private _tcpIn(f: Uint8Array, ip: Ip4Packet): void {
    const o = ip.start;
    if (ip.end - o < 20 || !l4ChecksumOk(f, ip)) return;
    const sport = get16(f, o);
    const dport = get16(f, o + 2);
    const seq = get32(f, o + 4);
    const ack = get32(f, o + 8);
    const doff = (f[o + 12] >>> 4) * 4;
    const flags = f[o + 13];
    const window = get16(f, o + 14);
    if (doff < 20 || o + doff > ip.end) return;
    let mss = 0;
    let wscale = -1;
    for (let i = o + 20; i < o + doff; ) {
      const kind = f[i];
      if (kind === 0) break;
      if (kind === 1) {
        i++;
        continue;
      }
      const len = f[i + 1];
      if (len < 2 || i + len > o + doff) break;
      if (kind === 2 && len === 4) mss = get16(f, i + 2);
      else if (kind === 3 && len === 3 && flags & TcpFlag.SYN) wscale = f[i + 2]; // RFC 7323: only in a SYN
      i += len;
    }
    const data = f.subarray(o + doff, ip.end);
    const key = `${ip.src}:${sport}:${ip.dst}:${dport}`;
    const c = this._tcp.get(key);
    if (c) {
      c.segment(flags, seq, ack, window, data, mss, wscale);
      return;
    }
    if (flags & TcpFlag.RST) return;
    const syn = (flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
    const hostAddr = this._hostAddress(ip.dst);
    if (!syn || this.opts.restrict || hostAddr === null) {
      this._rst(ip, sport, dport, seq, ack, flags, data.length);
      return;
    }
    const conn = new TcpConn(this, key, ip.src, sport, ip.dst, dport, this._newIss(), 'connecting');
    conn.guestSyn(seq, window, mss, wscale);
    this._tcp.set(key, conn);
    conn.host = this._host.connect(hostAddr, dport, {
      onConnect: () => conn.hostConnected(),
      onData: (d) => conn.hostData(d),
      onEnd: () => conn.hostEnd(),
      onError: (msg) => {
        if (conn.state === 'connecting') this.onLog(`user net: guest connection to ${hostAddr}:${dport} failed: ${msg}`);
        conn.abort();
      },
      onDrain: () => conn.hostDrained(),
    });
  }

  /** Answer a segment that has no connection with RST (RFC 9293 3.10.7.1). */
  private _rst(ip: Ip4Packet, sport: number, dport: number, seq: number, ack: number, flags: number, len: number): void {
    const t = new Uint8Array(20);
    put16(t, 0, dport);
    put16(t, 2, sport);
    if (flags & TcpFlag.ACK) {
      put32(t, 4, ack);
      t[13] = TcpFlag.RST;
    } else {
      put32(t, 8, (seq + len + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0)) >>> 0);
      t[13] = TcpFlag.RST | TcpFlag.ACK;
    }
    t[12] = 5 << 4;
    put16(t, 16, csumFinish(csumAdd(t, 0, 20, pseudoSum(ip.dst, ip.src, PROTO_TCP, 20))));
    this._ipToGuest(ip.src, ip.dst, PROTO_TCP, t);
  }

  private _newIss(): number {
    this._iss = (this._iss + 0x10000 + ((Math.random() * 0xffff) | 0)) >>> 0;
    return this._iss;
  }

  /** A host connection to a forwarded port: a new connection from the gateway to the guest. */
  private _forwarded(f: HostForward, s: AcceptedStream): void {
    const guest = f.guestAddr ? ip4(f.guestAddr) : GUEST_FIRST;
    let port = 0;
    for (let i = 0; i < 16384; i++) {
      const p = this._nextPort;
      this._nextPort = p >= 65535 ? 49152 : p + 1;
      if (!this._tcp.has(`${guest}:${f.guestPort}:${GATEWAY}:${p}`)) {
        port = p;
        break;
      }
    }
    const key = `${guest}:${f.guestPort}:${GATEWAY}:${port}`;
    const conn = new TcpConn(this, key, guest, f.guestPort, GATEWAY, port, this._newIss(), 'syn-sent');
    this._tcp.set(key, conn);
    conn.host = s.accept({
      onConnect: () => {},
      onData: (d) => conn.hostData(d),
      onEnd: () => conn.hostEnd(),
      onError: () => conn.abort(),
      onDrain: () => conn.hostDrained(),
    });
    conn.openToGuest();
  }

  // ---- TcpOwner ----

  output(c: TcpConn, flags: number, seq: number, ack: number, window: number, data: Uint8Array | null, syn: boolean, gso: number): void {
    const ws = syn ? c.synWscale : -1;
    const hl = syn ? (ws >= 0 ? 28 : 24) : 20;
    const n = data ? data.length : 0;
    // the whole frame in one allocation: Ethernet and IP headers, then the TCP segment built in place
    const f = ip4Frame(this._guestMac ?? BROADCAST_MAC, GATEWAY_MAC, c.farIp, c.guestIp, PROTO_TCP, hl + n);
    const t = f.subarray(ETH_HDR + IP_HDR);
    put16(t, 0, c.farPort);
    put16(t, 2, c.guestPort);
    put32(t, 4, seq);
    put32(t, 8, flags & TcpFlag.ACK ? ack : 0);
    t[12] = (hl / 4) << 4;
    t[13] = flags;
    put16(t, 14, window);
    if (syn) {
      t[20] = 2;
      t[21] = 4;
      put16(t, 22, OUR_MSS);
      if (ws >= 0) {
        t[24] = 1; // NOP, then window scale (RFC 7323 2.2)
        t[25] = 3;
        t[26] = 3;
        t[27] = ws;
      }
    }
    if (data) t.set(data, hl);
    put16(t, 16, csumFinish(csumAdd(t, 0, t.length, pseudoSum(c.farIp, c.guestIp, PROTO_TCP, t.length))));
    this._toGuest(f, gso);
  }

  segmentLimit(mss: number): number {
    const l = this._port?.largeReceive?.() ?? 0;
    // a large receive is one IPv4 packet: at most 65535 bytes with the headers
    return l > mss ? Math.min(l, 0xffff - IP_HDR - 20) : mss;
  }

  ackSoon(c: TcpConn): void {
    this._acks.push(c);
    this._wake();
  }

  remove(c: TcpConn): void {
    if (this._tcp.get(c.key) === c) this._tcp.delete(c.key);
  }

  setTimer(ms: number, fn: () => void): unknown {
    return this._host.setTimer(ms, fn);
  }

  clearTimer(h: unknown): void {
    this._host.clearTimer(h);
  }

  /** Open TCP connections (for tests and the monitor). */
  get connections(): number {
    return this._tcp.size;
  }
}

function safeIp4(a: string): Ip4 | null {
  try {
    return ip4(a);
  } catch {
    return null;
  }
}

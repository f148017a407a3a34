/**
 * The user network's DHCP server (RFC 2131, options RFC 2132): it answers
 * DISCOVER with OFFER and REQUEST with ACK, handing out the address QEMU's
 * slirp gives (10.0.2.15 to the first client, the next ones after it) with
 * the gateway as router and server, the built-in DNS server, a /24 mask and
 * a day's lease. A REQUEST for another address gets a NAK, so the client
 * restarts with DISCOVER.
 */
import { get16, get32, put16, put32, type Ip4 } from './wire.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const MAGIC = 0x63825363;
const OP_REPLY = 2;
const enum Msg {
  DISCOVER = 1,
  OFFER = 2,
  REQUEST = 3,
  DECLINE = 4,
  ACK = 5,
  NAK = 6,
  RELEASE = 7,
  INFORM = 8,
}

export interface DhcpConfig {
  server: Ip4;
  /** The default gateway offered, or null for none (a private switch without a router). */
  router: Ip4 | null;
  /** The DNS server offered, or null for none. */
  dns: Ip4 | null;
  netmask: Ip4;
  /** The first address handed out. */
  first: Ip4;
  /** How many addresses the pool holds from `first` (unbounded when absent); past it, clients get no answer. */
  poolSize?: number;
  leaseSeconds: number;
}

/** A parsed client message. */
interface Request {
  xid: number;
  chaddr: Uint8Array;
  flags: number;
  type: number;
  requested: Ip4 | null;
  ciaddr: Ip4;
}

function parse(p: Uint8Array): Request | null {
  if (p.length < 240 || p[0] !== 1 || p[1] !== 1 || p[2] !== 6 || get32(p, 236) !== MAGIC) return null;
  let type = 0;
  let requested: Ip4 | null = null;
  for (let i = 240; i < p.length; ) {
    const code = p[i];
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255 || i + 1 >= p.length) break;
    const len = p[i + 1];
    if (i + 2 + len > p.length) break;
    if (code === 53 && len >= 1) type = p[i + 2];
    if (code === 50 && len === 4) requested = get32(p, i + 2);
    i += 2 + len;
  }
  return { xid: get32(p, 4), flags: get16(p, 10), ciaddr: get32(p, 12), chaddr: p.slice(28, 34), type, requested };
}

export class DhcpServer {
  private readonly _leases = new Map<string, Ip4>();

  constructor(readonly cfg: DhcpConfig) {}

  /** The address this client gets (stable per MAC), or null when the pool is used up. */
  addressFor(mac: Uint8Array): Ip4 | null {
    const key = Array.from(mac).join(':');
    let a = this._leases.get(key);
    if (a === undefined) {
      if (this.cfg.poolSize !== undefined && this._leases.size >= this.cfg.poolSize) return null;
      a = (this.cfg.first + this._leases.size) >>> 0;
      this._leases.set(key, a);
    }
    return a;
  }

  /** Answer one client message (the UDP payload); null when there is nothing to say. */
  handle(payload: Uint8Array): Uint8Array | null {
    const rq = parse(payload);
    if (!rq) return null;
    const yiaddr = this.addressFor(rq.chaddr);
    if (yiaddr === null) return null; // no address left: say nothing, as a server with an empty pool does
    let reply: Msg;
    switch (rq.type) {
      case Msg.DISCOVER:
        reply = Msg.OFFER;
        break;
      case Msg.REQUEST: {
        const want = rq.requested ?? rq.ciaddr;
        reply = want === 0 || want === yiaddr ? Msg.ACK : Msg.NAK;
        break;
      }
      case Msg.INFORM:
        reply = Msg.ACK;
        break;
      default:
        return null; // DECLINE, RELEASE: nothing to answer
    }
    return this._build(rq, reply, rq.type === Msg.INFORM ? 0 : yiaddr);
  }

  private _build(rq: Request, type: Msg, yiaddr: Ip4): Uint8Array {
    const c = this.cfg;
    const p = new Uint8Array(300);
    p[0] = OP_REPLY;
    p[1] = 1;
    p[2] = 6;
    put32(p, 4, rq.xid);
    put16(p, 10, rq.flags);
    if (type !== Msg.NAK) put32(p, 16, yiaddr);
    put32(p, 20, c.server);
    p.set(rq.chaddr, 28);
    put32(p, 236, MAGIC);
    let i = 240;
    const opt = (code: number, data: number[]) => {
      p[i++] = code;
      p[i++] = data.length;
      for (const b of data) p[i++] = b;
    };
    const ip = (a: Ip4) => [a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff];
    opt(53, [type]);
    opt(54, ip(c.server));
    if (type !== Msg.NAK) {
      const l = c.leaseSeconds;
      if (yiaddr) opt(51, [l >>> 24, (l >>> 16) & 0xff, (l >>> 8) & 0xff, l & 0xff]);
      opt(1, ip(c.netmask));
      if (c.router !== null) opt(3, ip(c.router));
      if (c.dns !== null) opt(6, ip(c.dns));
    }
    p[i++] = 255;
    return p;
  }
}

/**
 * The switch's own DHCP server (`tsvm switch --dhcp 10.0.3.0/24`): a port on
 * the switch with its own MAC that answers DHCP (dhcp.ts) and ARP for its
 * address, so VMs on a private network get addresses without static
 * configuration. It sits at the subnet's first address and leases from the
 * second up; it offers no router and no DNS server unless asked (router=,
 * dns=), because a private network has neither: two VMs see each other and
 * nothing else.
 */
import { DhcpServer, DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from './dhcp.js';
import type { EthSwitch, SwitchPort } from './switch.js';
import { buildIp4, buildUdp, ETHERTYPE_ARP, get16, get32, ip4, ip4Text, l4ChecksumOk, parseIp4, PROTO_UDP, put16, put32, type Ip4 } from './wire.js';

export interface SwitchDhcpConfig {
  /** The network address and prefix length (8..30). */
  net: Ip4;
  prefix: number;
  router: Ip4 | null;
  dns: Ip4 | null;
}

/** Parse `ADDR/PREFIX[,router=ADDR][,dns=ADDR]` (a RangeError says what is wrong). */
export function parseSwitchDhcp(text: string): SwitchDhcpConfig {
  const [cidr, ...rest] = text.split(',');
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new RangeError(`'${cidr}' is not a subnet like 10.0.3.0/24`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new RangeError(`subnet ${cidr}: the prefix length must be 8..30`);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const net = (ip4(m[1]) & mask) >>> 0;
  const inside = (a: Ip4, what: string) => {
    if (((a & mask) >>> 0) !== net) throw new RangeError(`${what} ${ip4Text(a)} is outside ${cidr}`);
    return a;
  };
  let router: Ip4 | null = null;
  let dns: Ip4 | null = null;
  for (const kv of rest) {
    const [k, v] = kv.split('=');
    if (k === 'router' && v) router = inside(ip4(v), 'router');
    else if (k === 'dns' && v) dns = ip4(v);
    else throw new RangeError(`'${kv}': the DHCP options are router=ADDR and dns=ADDR`);
  }
  return { net, prefix, router, dns };
}

export class SwitchDhcp {
  readonly mac: Uint8Array;
  readonly address: Ip4;
  private readonly _dhcp: DhcpServer;
  private readonly _port: SwitchPort;

  constructor(sw: EthSwitch, readonly cfg: SwitchDhcpConfig) {
    const size = 2 ** (32 - cfg.prefix);
    this.address = (cfg.net + 1) >>> 0;
    // a locally administered MAC made of the server's address, as slirp names its gateway
    this.mac = Uint8Array.from([0x52, 0x55, this.address >>> 24, (this.address >>> 16) & 0xff, (this.address >>> 8) & 0xff, this.address & 0xff]);
    const netmask = (0xffffffff << (32 - cfg.prefix)) >>> 0;
    this._dhcp = new DhcpServer({ server: this.address, router: cfg.router, dns: cfg.dns, netmask, first: (cfg.net + 2) >>> 0, poolSize: size - 3, leaseSeconds: 86400 });
    this._port = sw.addPort(`DHCP server ${ip4Text(this.address)}`, { put: (f) => (this._in(f), true) });
  }

  close(): void {
    this._port.remove();
  }

  private _in(f: Uint8Array): void {
    if (f.length >= 42 && get16(f, 12) === ETHERTYPE_ARP) {
      // an ARP request for our address (udhcpc renews by unicast to the server)
      if (get16(f, 14) !== 1 || get16(f, 16) !== 0x0800 || f[18] !== 6 || f[19] !== 4 || get16(f, 20) !== 1 || get32(f, 38) !== this.address) return;
      const r = new Uint8Array(60);
      r.set(f.subarray(22, 28), 0);
      r.set(this.mac, 6);
      put16(r, 12, ETHERTYPE_ARP);
      r.set(f.subarray(14, 20), 14);
      put16(r, 20, 2);
      r.set(this.mac, 22);
      put32(r, 28, this.address);
      r.set(f.subarray(22, 32), 32);
      this._port.input(r);
      return;
    }
    const ip = parseIp4(f);
    if (!ip || ip.proto !== PROTO_UDP || ip.end - ip.start < 8 || !l4ChecksumOk(f, ip)) return;
    if (get16(f, ip.start + 2) !== DHCP_SERVER_PORT) return;
    const ulen = get16(f, ip.start + 4);
    if (ulen < 8 || ip.start + ulen > ip.end) return;
    const reply = this._dhcp.handle(f.subarray(ip.start + 8, ip.start + ulen));
    if (!reply) return;
    const to = 0xffffffff; // the client has no address yet: IP broadcast, but only to its MAC
    this._port.input(buildIp4(f.subarray(6, 12), this.mac, this.address, to, PROTO_UDP, buildUdp(this.address, DHCP_SERVER_PORT, to, DHCP_CLIENT_PORT, reply)));
  }
}

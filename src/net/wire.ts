/**
 * Wire formats the user-mode network speaks: Ethernet II, ARP, IPv4, ICMP,
 * UDP and TCP headers (RFC 826, 791, 792, 768, 9293), read from and built
 * into byte arrays, and the Internet checksum (RFC 1071). Nothing here
 * touches the host: frames in, frames out.
 */

export const ETH_HDR = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const IP_HDR = 20;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const BROADCAST_MAC = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** An IPv4 address as an unsigned 32-bit number (10.0.2.15 = 0x0a00020f). */
export type Ip4 = number;

export function ip4(text: string): Ip4 {
  const p = text.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new RangeError(`'${text}' is not an IPv4 address`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function ip4Text(a: Ip4): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

export function macText(m: Uint8Array): string {
  return Array.from(m.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function get16(p: Uint8Array, o: number): number {
  return (p[o] << 8) | p[o + 1];
}

export function get32(p: Uint8Array, o: number): number {
  return ((p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3]) >>> 0;
}

export function put16(p: Uint8Array, o: number, v: number): void {
  p[o] = (v >>> 8) & 0xff;
  p[o + 1] = v & 0xff;
}

export function put32(p: Uint8Array, o: number, v: number): void {
  p[o] = v >>> 24;
  p[o + 1] = (v >>> 16) & 0xff;
  p[o + 2] = (v >>> 8) & 0xff;
  p[o + 3] = v & 0xff;
}

/** Ones' complement sum of p[start, end), unfolded. */
export function csumAdd(p: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (i < end) sum += p[i] << 8;
  return sum;
}

/** Fold and complement: the value that goes in a checksum field. */
export function csumFinish(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The TCP/UDP pseudo-header sum (RFC 9293 3.1, RFC 768). */
export function pseudoSum(src: Ip4, dst: Ip4, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** A parsed IPv4 packet inside an Ethernet frame (offsets into the frame). */
export interface Ip4Packet {
  src: Ip4;
  dst: Ip4;
  proto: number;
  ttl: number;
  /** Start and end of the IP payload in the frame. */
  start: number;
  end: number;
}

/** Parse the IPv4 header of a frame; null when it is not a whole, unfragmented, checksum-valid IPv4 packet. */
export function parseIp4(f: Uint8Array): Ip4Packet | null {
  if (f.length < ETH_HDR + IP_HDR || get16(f, 12) !== ETHERTYPE_IPV4) return null;
  const o = ETH_HDR;
  if (f[o] >>> 4 !== 4) return null;
  const ihl = (f[o] & 0xf) * 4;
  const total = get16(f, o + 2);
  if (ihl < IP_HDR || total < ihl || o + total > f.length) return null;
  if (csumFinish(csumAdd(f, o, o + ihl)) !== 0) return null;
  const frag = get16(f, o + 6);
  if (frag & 0x3fff) return null; // fragments (MF set or an offset) are not reassembled
  return { src: get32(f, o + 12), dst: get32(f, o + 16), proto: f[o + 9], ttl: f[o + 8], start: o + ihl, end: o + total };
}

let ipId = 0;

/** Build an Ethernet frame holding an IPv4 packet with `payload` (checksum of the IP header filled in). */
export function buildIp4(dstMac: Uint8Array, srcMac: Uint8Array, src: Ip4, dst: Ip4, proto: number, payload: Uint8Array, ttl = 64): Uint8Array {
  const f = ip4Frame(dstMac, srcMac, src, dst, proto, payload.length, ttl);
  f.set(payload, ETH_HDR + IP_HDR);
  return f;
}

/** An Ethernet frame with its Ethernet and IPv4 headers filled in and `payloadLen` bytes of room after them (zeroed). */
export function ip4Frame(dstMac: Uint8Array, srcMac: Uint8Array, src: Ip4, dst: Ip4, proto: number, payloadLen: number, ttl = 64): Uint8Array {
  const f = new Uint8Array(ETH_HDR + IP_HDR + payloadLen);
  f.set(dstMac.subarray(0, 6), 0);
  f.set(srcMac.subarray(0, 6), 6);
  put16(f, 12, ETHERTYPE_IPV4);
  const o = ETH_HDR;
  f[o] = 0x45;
  put16(f, o + 2, IP_HDR + payloadLen);
  put16(f, o + 4, (ipId = (ipId + 1) & 0xffff));
  put16(f, o + 6, 0x4000); // DF
  f[o + 8] = ttl;
  f[o + 9] = proto;
  put32(f, o + 12, src);
  put32(f, o + 16, dst);
  put16(f, o + 10, csumFinish(csumAdd(f, o, o + IP_HDR)));
  return f;
}

/** A UDP datagram (header + data) with its checksum. */
export function buildUdp(src: Ip4, sport: number, dst: Ip4, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, u.length);
  u.set(data, 8);
  const c = csumFinish(csumAdd(u, 0, u.length, pseudoSum(src, dst, PROTO_UDP, u.length)));
  put16(u, 6, c === 0 ? 0xffff : c);
  return u;
}

/** Whether a TCP or UDP segment's checksum (over the pseudo-header) verifies. */
export function l4ChecksumOk(f: Uint8Array, ip: Ip4Packet): boolean {
  if (ip.proto === PROTO_UDP && get16(f, ip.start + 6) === 0) return true;
  return csumFinish(csumAdd(f, ip.start, ip.end, pseudoSum(ip.src, ip.dst, ip.proto, ip.end - ip.start))) === 0;
}

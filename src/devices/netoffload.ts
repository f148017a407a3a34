/**
 * NIC transmit offloads, shared by the e1000 and virtio-net: Internet
 * checksum insertion and TCP segmentation of a whole packet, described by a
 * context in the e1000's terms (its IXSM/TXSM, the legacy descriptor's
 * CSO/CSS, TSE: 8254x manual sections 3.5 and 3.6); virtio-net fills the
 * same context from its virtio_net_hdr (csum_start, gso_size). All offsets
 * come from the guest and are checked against the packet; a bad one leaves
 * the bytes as they are.
 */

/** A checksum/segmentation context as a context descriptor sets it. */
export interface TxContext {
  ipcss: number;
  ipcso: number;
  ipcse: number;
  tucss: number;
  tucso: number;
  tucse: number;
  tucmd: number;
  mss: number;
  hdrlen: number;
  paylen: number;
}

export function emptyContext(): TxContext {
  return { ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, tucmd: 0, mss: 0, hdrlen: 0, paylen: 0 };
}

/** The 16-bit ones' complement sum of p[start, end) added to `sum` (not folded, not complemented). */
export function sum16(p: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (i < end) sum += p[i] << 8;
  return sum;
}

export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Insert a checksum: sum p[css, cse] (cse inclusive; 0 = to the end), with
 * whatever the field at cso holds (the guest's pseudo-header sum), and store
 * the complement at cso. Out-of-range offsets do nothing.
 */
export function insertChecksum(p: Uint8Array, len: number, cso: number, css: number, cse: number, extra = 0): void {
  const end = cse === 0 || cse >= len ? len : cse + 1;
  if (css >= end || cso + 2 > len) return;
  const c = ~fold(sum16(p, css, end, extra)) & 0xffff;
  p[cso] = c >>> 8;
  p[cso + 1] = c & 0xff;
}

/**
 * Cut a TSO packet (headers of `ctx.hdrlen` bytes, then the payload) into
 * frames of at most `mss` payload bytes, fixing in each the IPv4 total length
 * and id, the TCP sequence number and flags, and both checksums. Returns the
 * frames; a context that does not fit the packet yields the packet unchanged.
 */
export function segment(p: Uint8Array, len: number, ctx: TxContext): Uint8Array[] {
  const { hdrlen, ipcss, tucss } = ctx;
  const mss = ctx.mss;
  if (hdrlen <= tucss || hdrlen > len || mss < 1 || ipcss + 20 > hdrlen || tucss + 16 > hdrlen || ctx.tucso + 2 > hdrlen) {
    return [p.slice(0, len)];
  }
  const isTcp = (ctx.tucmd & 0x01) !== 0;
  const isIp4 = (ctx.tucmd & 0x02) !== 0;
  const out: Uint8Array[] = [];
  const payload = len - hdrlen;
  const ipId = (p[ipcss + 4] << 8) | p[ipcss + 5];
  const seq = ((p[tucss + 4] << 24) | (p[tucss + 5] << 16) | (p[tucss + 6] << 8) | p[tucss + 7]) >>> 0;
  const flags = p[tucss + 13];
  const cso0 = (p[ctx.tucso] << 8) | p[ctx.tucso + 1];
  let off = 0;
  let n = 0;
  do {
    const chunk = Math.min(mss, payload - off);
    const last = off + chunk >= payload;
    const f = new Uint8Array(hdrlen + chunk);
    f.set(p.subarray(0, hdrlen));
    f.set(p.subarray(hdrlen + off, hdrlen + off + chunk), hdrlen);
    if (isIp4) {
      const tot = f.length - ipcss;
      f[ipcss + 2] = tot >>> 8;
      f[ipcss + 3] = tot & 0xff;
      const id = (ipId + n) & 0xffff;
      f[ipcss + 4] = id >>> 8;
      f[ipcss + 5] = id & 0xff;
      f[ctx.ipcso] = 0;
      f[ctx.ipcso + 1] = 0;
      insertChecksum(f, f.length, ctx.ipcso, ipcss, ctx.ipcse || hdrlen - 1);
    } else {
      // IPv6: the payload length field
      const pl = f.length - ipcss - 40;
      f[ipcss + 4] = (pl >>> 8) & 0xff;
      f[ipcss + 5] = pl & 0xff;
    }
    if (isTcp) {
      const s = (seq + off) >>> 0;
      f[tucss + 4] = s >>> 24;
      f[tucss + 5] = (s >>> 16) & 0xff;
      f[tucss + 6] = (s >>> 8) & 0xff;
      f[tucss + 7] = s & 0xff;
      if (!last) f[tucss + 13] = flags & ~0x09; // FIN and PSH only on the last segment
    } else {
      const ul = f.length - tucss;
      f[tucss + 4] = ul >>> 8;
      f[tucss + 5] = ul & 0xff;
    }
    // the guest left the pseudo-header sum without the length in the field: add the length
    f[ctx.tucso] = cso0 >>> 8;
    f[ctx.tucso + 1] = cso0 & 0xff;
    insertChecksum(f, f.length, ctx.tucso, tucss, 0, f.length - tucss);
    out.push(f);
    off += chunk;
    n++;
  } while (off < payload);
  return out;
}

const ETH = 14;

/**
 * Offset of the TCP or UDP header of an unfragmented IPv4 frame (Ethernet II,
 * no VLAN tag) whose IP lengths fit the frame, else -1.
 */
export function ipv4L4Start(f: Uint8Array): number {
  if (f.length < ETH + 20 || f[12] !== 0x08 || f[13] !== 0x00 || f[ETH] >>> 4 !== 4) return -1;
  const ihl = (f[ETH] & 0xf) * 4;
  const total = (f[ETH + 2] << 8) | f[ETH + 3];
  if (ihl < 20 || total < ihl + 8 || ETH + total > f.length) return -1;
  if (((f[ETH + 6] << 8) | f[ETH + 7]) & 0x3fff) return -1; // a fragment
  const proto = f[ETH + 9];
  if (proto !== 6 && proto !== 17) return -1;
  return ETH + ihl;
}

/** The IPv4 pseudo-header sum (RFC 9293 3.1) of a frame for an L4 length (unfolded). */
export function ipv4PseudoSum(f: Uint8Array, len: number): number {
  return sum16(f, ETH + 12, ETH + 20, f[ETH + 9] + len);
}

/** Whether the IPv4 header checksum of a frame verifies. */
export function ipv4HeaderOk(f: Uint8Array): boolean {
  return fold(sum16(f, ETH, ETH + (f[ETH] & 0xf) * 4)) === 0xffff;
}

/** Whether the TCP/UDP checksum at `l4` (from ipv4L4Start) verifies; a UDP checksum of 0 means none. */
export function l4ChecksumOk(f: Uint8Array, l4: number): boolean {
  const end = ETH + ((f[ETH + 2] << 8) | f[ETH + 3]);
  if (f[ETH + 9] === 17 && f[l4 + 6] === 0 && f[l4 + 7] === 0) return true;
  return fold(sum16(f, l4, end, ipv4PseudoSum(f, end - l4))) === 0xffff;
}

/**
 * virtio-net (virtio 1.0, 5.1) over a NetBackend: queue 0 receives, queue 1
 * transmits; no control queue. Every buffer starts with the 12-byte
 * virtio_net_hdr (VERSION_1 always has num_buffers).
 *
 * Offloads, offered because the guest kernel runs at emulated speed and
 * every byte it checksums and every packet it handles costs it far more than
 * the same work costs the host in JavaScript (docs/net.md, "Speed"):
 * - CSUM and HOST_TSO4 (transmit): the driver may leave the TCP/UDP checksum
 *   to us (NEEDS_CSUM, csum_start/csum_offset) and hand over TCP/IPv4
 *   segments of up to 64 KiB (gso_type TCPV4, gso_size); we complete the
 *   checksum and cut the segment into gso_size frames before the backend
 *   sees them, so the wire only ever carries ordinary, correct frames.
 * - GUEST_CSUM (receive): a TCP/UDP/IPv4 frame whose checksum we verified is
 *   marked DATA_VALID, so the guest does not checksum it again.
 * - GUEST_TSO4 (receive): a backend that knows (largeReceive()) may hand us
 *   one TCP segment of up to 64 KiB standing for segments of `gso` bytes; it
 *   goes to the guest as one GSO packet (NEEDS_CSUM, gso_type TCPV4), as a
 *   host's GRO would give it. Without MRG_RXBUF Linux then posts 64 KiB+
 *   receive buffers ("big packets"); a large frame that still does not fit
 *   a buffer is dropped (counted in rxDropped).
 * Offered: MAC, STATUS (link up) and the four above. A frame whose offload
 * fields do not fit the packet is sent as it is (the backend's checksum
 * check then drops it), never read outside the packet.
 *
 * Receive: the backend hands frames over at slice boundaries through
 * NetPort.receive() while canReceive() says a receive buffer is posted; when
 * the driver posts buffers the device calls `wake` so the backend delivers
 * what it kept queued.
 */
import type { NetBackend, NetPort } from '../backends.js';
import { fold, insertChecksum, ipv4L4Start, ipv4PseudoSum, l4ChecksumOk, segment, type TxContext } from '../netoffload.js';
import { put16, VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain, VirtioError } from './queue.js';

export const enum NetF {
  CSUM = 0,
  GUEST_CSUM = 1,
  MAC = 5,
  GUEST_TSO4 = 7,
  HOST_TSO4 = 11,
  STATUS = 16,
}

/** virtio_net_hdr fields. */
export const enum NetHdr {
  F_NEEDS_CSUM = 1,
  F_DATA_VALID = 2,
  GSO_NONE = 0,
  GSO_TCPV4 = 1,
  GSO_ECN = 0x80,
}

const RX = 0;
const TX = 1;
export const NET_HDR_BYTES = 12;
/** The largest packet accepted from the guest: a 64 KiB TSO segment and its headers. */
const MAX_FRAME = 0x10000 + 0x100;
/** The most payload of one large receive: one IPv4 packet of at most 65535 bytes with 40+ bytes of headers. */
const LARGE_RECEIVE = 0xffff - 40 - 40;
const LINK_UP = 1;
const ETH = 14;

export class VirtioNet implements VirtioDevice, NetPort {
  readonly type = VirtioId.NET;
  readonly queueCount = 2;
  readonly features: readonly [number, number] = [
    (1 << NetF.CSUM) | (1 << NetF.GUEST_CSUM) | (1 << NetF.MAC) | (1 << NetF.GUEST_TSO4) | (1 << NetF.HOST_TSO4) | (1 << NetF.STATUS),
    0,
  ];
  /** mac[6], status u16, max_virtqueue_pairs u16 */
  readonly config = new Uint8Array(10);
  /** Frames from the guest too short or too long to be Ethernet, and frames received with no room (diagnostics). */
  txDropped = 0;
  rxDropped = 0;
  private _host!: VirtioHost;
  private readonly _rx = new Chain();
  private readonly _tx = new Chain();
  private readonly _hdr = new Uint8Array(NET_HDR_BYTES);
  private readonly _txHdr = new Uint8Array(NET_HDR_BYTES);
  private readonly _csum = new Uint8Array(2);
  private _wake: () => void = () => {};

  constructor(
    readonly id: string,
    private readonly _backend: NetBackend,
    mac: Uint8Array,
  ) {
    if (mac.length !== 6) throw new RangeError(`${id}: a MAC address has 6 bytes`);
    this.config.set(mac, 0);
    put16(this.config, 6, LINK_UP);
    put16(this.config, 8, 1);
    _backend.attach(this, () => this._wake());
  }

  /** The board's request for a NetBackend.deliver() at the next slice boundary. */
  setWake(wake: () => void): void {
    this._wake = wake;
  }

  attach(host: VirtioHost): void {
    this._host = host;
  }

  canReceive(): boolean {
    const h = this._host;
    return h.live && h.queues[RX].pending(h.ram) > 0;
  }

  largeReceive(): number {
    const h = this._host;
    return h.live && h.negotiated(NetF.GUEST_TSO4) && h.negotiated(NetF.GUEST_CSUM) ? LARGE_RECEIVE : 0;
  }

  receive(frame: Uint8Array, gso = 0): void {
    const h = this._host;
    if (!h.live) return;
    const hdr = this._hdr;
    hdr.fill(0);
    hdr[10] = 1; // num_buffers
    // where the TCP checksum field is, for a large receive (its value becomes the pseudo-header sum)
    let csumAt = -1;
    let partial = 0;
    if (gso > 0 && frame.length > ETH + 1500) {
      const l4 = tcp4Start(frame);
      if (l4 < 0 || !this.largeReceive() || !l4ChecksumOk(frame, l4)) {
        this.rxDropped++;
        return;
      }
      const thl = (frame[l4 + 12] >>> 4) * 4;
      hdr[0] = NetHdr.F_NEEDS_CSUM;
      hdr[1] = NetHdr.GSO_TCPV4;
      put16(hdr, 2, l4 + thl); // hdr_len
      put16(hdr, 4, gso);
      put16(hdr, 6, l4); // csum_start
      put16(hdr, 8, 16); // csum_offset: TCP's checksum field
      csumAt = l4 + 16;
      partial = fold(ipv4PseudoSum(frame, ETH + ((frame[ETH + 2] << 8) | frame[ETH + 3]) - l4));
    } else if (h.negotiated(NetF.GUEST_CSUM)) {
      const l4 = ipv4L4Start(frame);
      if (l4 >= 0 && l4ChecksumOk(frame, l4)) hdr[0] = NetHdr.F_DATA_VALID;
    }
    const q = h.queues[RX];
    const c = this._rx;
    let ok = false;
    h.guarded(() => {
      ok = q.pop(h.ram, c);
    });
    if (!ok) {
      this.rxDropped++;
      return;
    }
    if (c.writeBytes < NET_HDR_BYTES + frame.length) {
      if (csumAt >= 0) {
        // a large receive in a small buffer would be cut into a packet that lies about its length
        this.rxDropped++;
        q.push(h.ram, c.head, 0);
        h.used(q);
        return;
      }
      // a buffer too small for the frame: deliver what fits, as a truncated frame is what the driver asked for
      this.rxDropped++;
    }
    const n = c.write(h.ram, 0, hdr) + c.write(h.ram, NET_HDR_BYTES, frame);
    if (csumAt >= 0) {
      this._csum[0] = partial >>> 8;
      this._csum[1] = partial & 0xff;
      c.write(h.ram, NET_HDR_BYTES + csumAt, this._csum);
    }
    q.push(h.ram, c.head, n);
    h.used(q);
  }

  notify(q: number): void {
    if (q === RX) {
      this._wake();
      return;
    }
    const h = this._host;
    const queue = h.queues[TX];
    const c = this._tx;
    let any = false;
    while (queue.pop(h.ram, c)) {
      if (c.readBytes < NET_HDR_BYTES) throw new VirtioError(`${this.id}: transmit buffer without a header`);
      const len = c.readBytes - NET_HDR_BYTES;
      if (len < ETH || len > MAX_FRAME) this.txDropped++;
      else {
        const frame = new Uint8Array(len);
        c.read(h.ram, 0, this._txHdr);
        c.read(h.ram, NET_HDR_BYTES, frame);
        this._send(frame);
      }
      queue.push(h.ram, c.head, 0);
      any = true;
    }
    if (any) h.used(queue);
  }

  /** Apply the transmit offloads the header asks for, then hand the frame(s) to the backend. */
  private _send(f: Uint8Array): void {
    const hdr = this._txHdr;
    const h = this._host;
    const flags = hdr[0];
    const gsoType = hdr[1] & ~NetHdr.GSO_ECN;
    const gsoSize = hdr[4] | (hdr[5] << 8);
    const start = hdr[6] | (hdr[7] << 8);
    const offset = hdr[8] | (hdr[9] << 8);
    if (gsoType === NetHdr.GSO_TCPV4 && h.negotiated(NetF.HOST_TSO4) && flags & NetHdr.F_NEEDS_CSUM) {
      const l4 = tcp4Start(f);
      if (l4 >= 0 && l4 === start && offset === 16 && gsoSize > 0) {
        const ctx: TxContext = {
          ipcss: ETH, ipcso: ETH + 10, ipcse: l4 - 1, tucss: l4, tucso: l4 + 16, tucse: 0,
          tucmd: 0x03, // TCP over IPv4
          mss: gsoSize, hdrlen: l4 + (f[l4 + 12] >>> 4) * 4, paylen: 0,
        };
        if (ctx.hdrlen <= f.length) {
          // the driver's field holds the pseudo-header sum over the whole segment's length (Linux's
          // tcp_v4_send_check); segment() wants it without a length, and adds each frame's own
          const ps = fold(ipv4PseudoSum(f, 0));
          f[l4 + 16] = ps >>> 8;
          f[l4 + 17] = ps & 0xff;
          for (const s of segment(f, f.length, ctx)) this._backend.send(s);
          return;
        }
      }
    }
    // a packet that needs no segmenting (or cannot be segmented) may still want its checksum
    if (flags & NetHdr.F_NEEDS_CSUM && h.negotiated(NetF.CSUM)) {
      // the field holds the pseudo-header sum; sum from csum_start to the end over it
      if (start + offset + 2 <= f.length) insertChecksum(f, f.length, start + offset, start, 0);
    }
    if (f.length > MAX_ETHERNET) this.txDropped++; // a large packet we could not segment
    else this._backend.send(f);
  }

  reset(): void {}

  /** No state of its own: a frame goes in or out within one call, and the rings are the transport's. */
  readonly stateFields = {};
  /** The counters are diagnostics of this run. */
  readonly stateTransient = ['txDropped', 'rxDropped', '_backend', '_rx', '_tx', '_hdr', '_txHdr', '_csum', '_wake'];
}

/** The largest ordinary frame (1500-byte MTU, a VLAN tag's room). */
const MAX_ETHERNET = ETH + 4 + 1500;

/** Offset of the TCP header of an unfragmented TCP/IPv4 frame whose lengths fit, else -1. */
function tcp4Start(f: Uint8Array): number {
  const l4 = ipv4L4Start(f);
  return l4 >= 0 && f[ETH + 9] === 6 && l4 + 20 <= f.length && l4 + (f[l4 + 12] >>> 4) * 4 <= f.length ? l4 : -1;
}

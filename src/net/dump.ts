/**
 * Packet capture (QEMU's `-object filter-dump`): a network backend wrapper
 * that passes every frame through unchanged and records it, in both
 * directions, in the classic libpcap format (magic a1b2c3d4, version 2.4,
 * link type 1 = Ethernet), which tcpdump and Wireshark read.
 */

export const PCAP_SNAPLEN = 65535;
const LINKTYPE_ETHERNET = 1;

/** The 24-byte file header. */
export function pcapHeader(): Uint8Array {
  const h = new Uint8Array(24);
  const v = new DataView(h.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, PCAP_SNAPLEN, true);
  v.setUint32(20, LINKTYPE_ETHERNET, true);
  return h;
}

/** One record: 16-byte header then the frame (cut at the snap length). */
export function pcapRecord(frame: Uint8Array, timeMs: number): Uint8Array {
  const n = Math.min(frame.length, PCAP_SNAPLEN);
  const r = new Uint8Array(16 + n);
  const v = new DataView(r.buffer);
  const sec = Math.floor(timeMs / 1000);
  v.setUint32(0, sec >>> 0, true);
  v.setUint32(4, Math.floor((timeMs - sec * 1000) * 1000), true);
  v.setUint32(8, n, true);
  v.setUint32(12, frame.length, true);
  r.set(frame.subarray(0, n), 16);
  return r;
}

interface Port {
  canReceive(): boolean;
  receive(frame: Uint8Array, gso?: number): void;
  largeReceive?(): number;
}

interface Backend {
  attach(port: Port, wake: () => void): void;
  send(frame: Uint8Array): void;
  deliver(): void;
  close(): void;
  status?(): { kind: string; queued: number; dropped: number; note?: string };
}

/** Where records go: the host opens the file. */
export interface DumpSink {
  write(bytes: Uint8Array): void;
  close(): void;
}

/** A backend that records what passes between a NIC and `inner`. */
export class DumpBackend implements Backend {
  constructor(
    private readonly _inner: Backend,
    private readonly _sink: DumpSink,
    private readonly _now: () => number,
  ) {
    _sink.write(pcapHeader());
  }

  attach(port: Port, wake: () => void): void {
    this._inner.attach(
      {
        canReceive: () => port.canReceive(),
        // a large receive is recorded as the one frame it is (as tcpdump shows GRO on a host)
        receive: (f, gso) => {
          this._sink.write(pcapRecord(f, this._now()));
          if (gso) port.receive(f, gso);
          else port.receive(f);
        },
        largeReceive: () => port.largeReceive?.() ?? 0,
      },
      wake,
    );
  }

  send(frame: Uint8Array): void {
    this._sink.write(pcapRecord(frame, this._now()));
    this._inner.send(frame);
  }

  deliver(): void {
    this._inner.deliver();
  }

  status(): { kind: string; queued: number; dropped: number; note?: string } {
    const s = this._inner.status?.() ?? { kind: 'unknown', queued: 0, dropped: 0 };
    return { ...s, kind: `${s.kind}, captured to a pcap` };
  }

  close(): void {
    this._inner.close();
    this._sink.close();
  }
}

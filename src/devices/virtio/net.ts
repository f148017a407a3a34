/**
 * virtio-net (virtio 1.0, 5.1) over a NetBackend: queue 0 receives, queue 1
 * transmits; no control queue, no offloads. Every buffer starts with the
 * 12-byte virtio_net_hdr (VERSION_1 always has num_buffers); with no
 * offloads negotiated the device sends it zeroed (num_buffers 1) and ignores
 * the driver's. Offered features: MAC and STATUS (link up).
 *
 * Receive: the backend hands frames over at slice boundaries through
 * NetPort.receive() while canReceive() says a receive buffer is posted; when
 * the driver posts buffers the device calls `wake` so the backend delivers
 * what it kept queued.
 */
import type { NetBackend, NetPort } from '../backends.js';
import { put16, VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain, VirtioError } from './queue.js';

export const enum NetF {
  MAC = 5,
  STATUS = 16,
}

const RX = 0;
const TX = 1;
export const NET_HDR_BYTES = 12;
/** The largest frame accepted from the guest (no TSO is offered, so this is generous). */
const MAX_FRAME = 65535;
const LINK_UP = 1;

export class VirtioNet implements VirtioDevice, NetPort {
  readonly type = VirtioId.NET;
  readonly queueCount = 2;
  readonly features: readonly [number, number] = [(1 << NetF.MAC) | (1 << NetF.STATUS), 0];
  /** mac[6], status u16, max_virtqueue_pairs u16 */
  readonly config = new Uint8Array(10);
  /** Frames from the guest too short or too long to be Ethernet, and frames received with no room (diagnostics). */
  txDropped = 0;
  rxDropped = 0;
  private _host!: VirtioHost;
  private readonly _rx = new Chain();
  private readonly _tx = new Chain();
  private readonly _hdr = new Uint8Array(NET_HDR_BYTES);
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
    this._hdr[10] = 1; // num_buffers
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

  receive(frame: Uint8Array): void {
    const h = this._host;
    if (!h.live) return;
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
      // a buffer too small for the frame: deliver what fits, as a truncated frame is what the driver asked for
      this.rxDropped++;
    }
    const n = c.write(h.ram, 0, this._hdr) + c.write(h.ram, NET_HDR_BYTES, frame);
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
      if (len < 14 || len > MAX_FRAME) this.txDropped++;
      else {
        const frame = new Uint8Array(len);
        c.read(h.ram, NET_HDR_BYTES, frame);
        this._backend.send(frame);
      }
      queue.push(h.ram, c.head, 0);
      any = true;
    }
    if (any) h.used(queue);
  }

  reset(): void {}

  saveState(): object {
    return {};
  }

  loadState(): void {}
}

/**
 * A point-to-point network between two tsvm processes (QEMU's `-netdev
 * socket,listen=` / `connect=`): each Ethernet frame travels over one TCP
 * connection as a 4-byte big-endian length and the frame, the framing QEMU's
 * socket backend uses. One side listens, the other connects; the two guests
 * then share a private Ethernet segment that nothing else reaches (give them
 * static addresses: there is no DHCP server on it).
 *
 * The connecting side retries every second until the listener is there, so
 * the two VMs may start in either order; frames sent while no peer is
 * connected are dropped, as on an unplugged cable.
 */
import type { Closable, HostStream, NetHost, StreamEvents } from './host.js';
import { encodeFrame, FrameReader } from './framing.js';
import { parseHostPort, parseStreamAddr, streamAddrText, type StreamAddr } from './addr.js';

export { parseHostPort, parseStreamAddr, streamAddrText, type StreamAddr };

interface Port {
  canReceive(): boolean;
  receive(frame: Uint8Array): void;
}

/**
 * Frames from the peer wait for the NIC in a queue. Once it holds
 * QUEUE_PAUSE_BYTES the stream is no longer read (backpressure: the peer's
 * frames wait in the kernel's socket buffers and in the peer, a switch or
 * another tsvm) until the NIC has taken it down to half, so a guest that
 * takes frames more slowly than they come loses none here. The queue is
 * still bounded in frames and bytes: past QUEUE_MAX or QUEUE_BYTES_MAX
 * (only reachable with what one read had already brought in) frames are
 * dropped and counted (stats.dropped), so a hostile peer sending 68 KiB
 * frames without end cannot make this process hold more than that.
 */
export const QUEUE_MAX = 4096;
export const QUEUE_BYTES_MAX = 4 << 20;
export const QUEUE_PAUSE_BYTES = 1 << 20;
const RETRY_MS = 1000;

/** Open a stream to `a` through the host. */
export function connectStream(host: NetHost, a: StreamAddr, ev: StreamEvents): HostStream {
  return 'path' in a ? host.connectUnix(a.path, ev) : host.connect(a.addr, a.port, ev);
}

export interface SocketNetOptions {
  listen?: { addr: string; port: number };
  /** The peer: another tsvm's listen=, or a switch (tsvm switch, the daemon's) on TCP or a UNIX socket. */
  connect?: StreamAddr;
}

export class SocketNet {
  private _port: Port | null = null;
  private _queue: Uint8Array[] = [];
  private _queueBytes = 0;
  private _peer: HostStream | null = null;
  private _rx = new FrameReader();
  private _listener: Closable | null = null;
  private _closed = false;
  private _waitingSaid = false;
  private _timer: unknown = null;
  /** Reading from the peer stopped until the NIC catches up. */
  private _paused = false;
  /** Frames sent and received, frames dropped for a full queue, and how often reading paused for the NIC. */
  readonly stats = { sent: 0, received: 0, dropped: 0, pauses: 0 };

  /** Bytes of frames waiting for the NIC (at most QUEUE_BYTES_MAX). */
  get queuedBytes(): number {
    return this._queueBytes;
  }
  onLog: (line: string) => void = () => {};

  constructor(
    private readonly _host: NetHost,
    readonly opts: SocketNetOptions,
  ) {
    if (!opts.listen === !opts.connect) throw new RangeError('a socket network either listens or connects');
  }

  /** Listen, or start connecting; rejects when the listening port cannot be had. */
  async start(): Promise<void> {
    if (this.opts.listen) {
      const { addr, port } = this.opts.listen;
      this._listener = await this._host.listen(addr, port, (s) => {
        if (this._peer) {
          s.accept(this._events()).destroy(); // one peer at a time
          return;
        }
        this._peer = s.accept(this._events());
        this._paused = false;
        this._peer.resume();
        this.onLog(`socket network: peer ${s.peer} connected`);
      });
    } else this._connect();
  }

  private _connect(): void {
    if (this._closed || !this.opts.connect) return;
    let over = false;
    // a refused attempt, or a connection that ended or broke (the switch restarted): try again in a second
    const lost = () => {
      if (over) return;
      over = true;
      if (this._peer === peer) {
        this._peer = null;
        this.onLog(`socket network: lost ${streamAddrText(this.opts.connect as StreamAddr)}; reconnecting`);
      } else if (!this._waitingSaid) {
        this._waitingSaid = true;
        this.onLog(`socket network: nothing answers at ${streamAddrText(this.opts.connect as StreamAddr)} yet; trying every second`);
      }
      this._rx.reset();
      peer.destroy();
      if (!this._closed) this._timer = this._host.setTimer(RETRY_MS, () => this._connect());
    };
    const peer = connectStream(this._host, this.opts.connect, {
      ...this._events(),
      onConnect: () => {
        this._peer = peer;
        this._paused = false;
        this.onLog(`socket network: connected to ${streamAddrText(this.opts.connect as StreamAddr)}`);
      },
      onError: lost,
      onEnd: lost,
    });
  }

  private _events() {
    return {
      onConnect: () => {},
      onData: (d: Uint8Array) => this._data(d),
      onEnd: () => {
        this._peer?.destroy();
        this._peer = null;
        this._rx.reset();
      },
      onError: () => {
        this._peer = null;
        this._rx.reset();
      },
      onDrain: () => {},
    };
  }

  private _data(d: Uint8Array): void {
    const bad = this._rx.push(d, (f) => {
      if (this._queue.length >= QUEUE_MAX || this._queueBytes + f.length > QUEUE_BYTES_MAX) this.stats.dropped++;
      else {
        this._queue.push(f);
        this._queueBytes += f.length;
        this.stats.received++;
      }
    });
    if (bad) {
      this.onLog(`socket network: the peer sent a ${bad}-byte frame; dropping the connection`);
      this._peer?.destroy();
      this._peer = null;
      // a destroyed socket reports nothing more: the connecting side starts over itself
      if (this.opts.connect && !this._closed) this._timer = this._host.setTimer(RETRY_MS, () => this._connect());
    }
    if (this._queue.length) this._wake(); // frames wait: ask for a slice boundary now
    if (!this._paused && this._queueBytes >= QUEUE_PAUSE_BYTES && this._peer) {
      this._paused = true;
      this.stats.pauses++;
      this._peer.pause();
    }
  }

  // ---- the NetBackend seam ----

  attach(port: Port, wake: () => void): void {
    this._port = port;
    this._wake = wake;
  }

  send(frame: Uint8Array): void {
    if (!this._peer) return;
    this._peer.write(encodeFrame(frame));
    this.stats.sent++;
  }

  private _wake: () => void = () => {};

  deliver(): void {
    const p = this._port;
    if (!p) return;
    let n = 0;
    let bytes = 0;
    while (n < this._queue.length && p.canReceive()) {
      const f = this._queue[n++];
      bytes += f.length;
      p.receive(f);
    }
    if (n) {
      this._queue.splice(0, n);
      this._queueBytes -= bytes;
    }
    if (this._paused && this._queueBytes <= QUEUE_PAUSE_BYTES / 2) {
      this._paused = false;
      this._peer?.resume();
    }
  }

  status(): { kind: string; queued: number; dropped: number; note?: string } {
    const where = this.opts.listen ? `listen=${this.opts.listen.addr}:${this.opts.listen.port}` : `connect=${streamAddrText(this.opts.connect as StreamAddr)}`;
    const note = [this.connected ? 'connected' : 'not connected', this._paused ? 'reading paused: the NIC is behind' : '', `paused ${this.stats.pauses} times`].filter(Boolean).join(', ');
    return { kind: `socket ${where}`, queued: this._queue.length, dropped: this.stats.dropped, note };
  }

  close(): void {
    this._closed = true;
    this._listener?.close();
    this._peer?.destroy();
    this._peer = null;
    if (this._timer !== null) this._host.clearTimer(this._timer);
    this._queue = [];
    this._queueBytes = 0;
  }

  get connected(): boolean {
    return this._peer !== null;
  }
}

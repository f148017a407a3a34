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
import type { Closable, HostStream, NetHost } from './host.js';

interface Port {
  canReceive(): boolean;
  receive(frame: Uint8Array): void;
}

/** Largest frame accepted from the peer (a 64 KiB TSO frame and then some). */
const MAX_FRAME = 0x11000;
const QUEUE_MAX = 4096;
const RETRY_MS = 1000;

export interface SocketNetOptions {
  listen?: { addr: string; port: number };
  connect?: { addr: string; port: number };
}

/** Parse `[HOST]:PORT`. */
export function parseHostPort(s: string): { addr: string; port: number } {
  const m = /^([^:]*):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new RangeError(`'${s}' is not HOST:PORT (e.g. 127.0.0.1:4444, or :4444 to listen on all addresses)`);
  return { addr: m[1], port };
}

export class SocketNet {
  private _port: Port | null = null;
  private _queue: Uint8Array[] = [];
  private _peer: HostStream | null = null;
  private _rx = new Uint8Array(0);
  private _listener: Closable | null = null;
  private _closed = false;
  private _timer: unknown = null;
  readonly stats = { sent: 0, received: 0, dropped: 0 };
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
        this._peer.resume();
        this.onLog(`socket network: peer ${s.peer} connected`);
      });
    } else this._connect();
  }

  private _connect(): void {
    if (this._closed || !this.opts.connect) return;
    const { addr, port } = this.opts.connect;
    let up = false;
    const peer = this._host.connect(addr, port, {
      ...this._events(),
      onConnect: () => {
        up = true;
        this._peer = peer;
      },
      onError: () => {
        if (this._peer === peer) this._peer = null;
        if (!up) this._timer = this._host.setTimer(RETRY_MS, () => this._connect());
      },
      onEnd: () => {
        if (this._peer === peer) this._peer = null;
        peer.destroy();
        this._timer = this._host.setTimer(RETRY_MS, () => this._connect());
      },
    });
  }

  private _events() {
    return {
      onConnect: () => {},
      onData: (d: Uint8Array) => this._data(d),
      onEnd: () => {
        this._peer?.destroy();
        this._peer = null;
        this._rx = new Uint8Array(0);
      },
      onError: () => {
        this._peer = null;
        this._rx = new Uint8Array(0);
      },
      onDrain: () => {},
    };
  }

  private _data(d: Uint8Array): void {
    const b = new Uint8Array(this._rx.length + d.length);
    b.set(this._rx);
    b.set(d, this._rx.length);
    let o = 0;
    while (b.length - o >= 4) {
      const n = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
      if (n > MAX_FRAME) {
        this.onLog(`socket network: the peer sent a ${n}-byte frame; dropping the connection`);
        this._peer?.destroy();
        this._peer = null;
        this._rx = new Uint8Array(0);
        return;
      }
      if (b.length - o - 4 < n) break;
      const f = b.slice(o + 4, o + 4 + n);
      o += 4 + n;
      if (this._queue.length >= QUEUE_MAX) this.stats.dropped++;
      else {
        this._queue.push(f);
        this.stats.received++;
      }
    }
    this._rx = b.slice(o);
    if (this._queue.length) this._wake(); // frames wait: ask for a slice boundary now
  }

  // ---- the NetBackend seam ----

  attach(port: Port, wake: () => void): void {
    this._port = port;
    this._wake = wake;
  }

  send(frame: Uint8Array): void {
    if (!this._peer) return;
    const out = new Uint8Array(4 + frame.length);
    out[0] = frame.length >>> 24;
    out[1] = (frame.length >>> 16) & 0xff;
    out[2] = (frame.length >>> 8) & 0xff;
    out[3] = frame.length & 0xff;
    out.set(frame, 4);
    this._peer.write(out);
    this.stats.sent++;
  }

  private _wake: () => void = () => {};

  deliver(): void {
    const p = this._port;
    if (!p) return;
    let n = 0;
    while (n < this._queue.length && p.canReceive()) p.receive(this._queue[n++]);
    if (n) this._queue.splice(0, n);
  }

  close(): void {
    this._closed = true;
    this._listener?.close();
    this._peer?.destroy();
    this._peer = null;
    if (this._timer !== null) this._host.clearTimer(this._timer);
  }

  get connected(): boolean {
    return this._peer !== null;
  }
}

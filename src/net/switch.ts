/**
 * A virtual Ethernet switch: the private network that joins VMs (VMware's
 * "team", a libvirt isolated network, QEMU's vde_switch). It behaves as an
 * unmanaged learning switch (IEEE 802.1D without spanning tree):
 *
 * - every frame's source MAC is learned against the port it came in on (a
 *   MAC that turns up on another port moves there: the VM was re-plugged);
 *   entries age out after five minutes without traffic, as on a hardware
 *   switch, so a MAC that went away is flooded again rather than lost;
 * - a frame to a known unicast MAC goes to that port alone; one to a
 *   broadcast, multicast or unknown MAC is flooded to every port but the one
 *   it came in on;
 * - a frame whose destination was learned on its own source port is dropped
 *   (it would go back where it came from);
 * - runt frames (shorter than an Ethernet header) and frames from a
 *   multicast source MAC are dropped.
 *
 * Ports are anything that can take a frame: a NIC of a machine in this
 * process (SwitchLink below), a stream to another tsvm process
 * (switchserver.ts), the switch's own DHCP server (switchdhcp.ts). Each port
 * bounds its own queue (`put` answers false when it is full) so one stuck VM
 * cannot make the switch hold unbounded memory: its frames are dropped and
 * counted, as a real switch drops at a full egress queue.
 *
 * Two switches share nothing: a VM sees exactly the VMs on its switch.
 */
import { macText } from './wire.js';

/** The far side of a port: where the switch hands the frames leaving through it. */
export interface PortSink {
  /**
   * Take one frame. The frame belongs to the switch and is never changed
   * afterwards, so the sink may keep it without a copy. Return false when
   * the port's queue is full (the switch counts the frame as dropped).
   */
  put(frame: Uint8Array): boolean;
}

export interface PortStats {
  /** Frames that came in through the port. */
  in: number;
  /** Frames handed out through the port. */
  out: number;
  /** Frames for the port dropped because its queue was full. */
  dropped: number;
}

export interface SwitchPort {
  readonly id: number;
  readonly name: string;
  readonly stats: PortStats;
  /** A frame from the port's device into the switch (copied; the caller may reuse its buffer). */
  input(frame: Uint8Array): void;
  /** Unplug: the port and every MAC learned on it are forgotten. */
  remove(): void;
}

export interface SwitchOptions {
  /** Milliseconds, for ageing the MAC table (default Date.now; tests pass a fake). */
  now?: () => number;
  /** How long a learned MAC stays without traffic (default 300 s, the 802.1D default). */
  ageMs?: number;
}

interface Entry {
  port: Port;
  at: number;
}

class Port implements SwitchPort {
  readonly stats: PortStats = { in: 0, out: 0, dropped: 0 };
  constructor(
    private readonly _sw: EthSwitch,
    readonly id: number,
    readonly name: string,
    readonly sink: PortSink,
  ) {}

  input(frame: Uint8Array): void {
    this._sw.forward(this, frame);
  }

  remove(): void {
    this._sw.removePort(this);
  }
}

/** The 48-bit MAC at `o` as a number (exact in a double). */
function macKey(f: Uint8Array, o: number): number {
  return f[o] * 0x10000000000 + f[o + 1] * 0x100000000 + (((f[o + 2] << 24) | (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]) >>> 0);
}

export class EthSwitch {
  private readonly _ports = new Set<Port>();
  private readonly _table = new Map<number, Entry>();
  private _nextId = 1;
  private readonly _now: () => number;
  private readonly _ageMs: number;
  /** Frames refused at the door (runts, multicast sources) and frames that would have gone back to their source port. */
  readonly stats = { runts: 0, badSource: 0, filtered: 0 };
  /** Port joins and leaves, for a log. */
  onLog: (line: string) => void = () => {};

  constructor(opts: SwitchOptions = {}) {
    this._now = opts.now ?? Date.now;
    this._ageMs = opts.ageMs ?? 300_000;
  }

  addPort(name: string, sink: PortSink): SwitchPort {
    const p = new Port(this, this._nextId++, name, sink);
    this._ports.add(p);
    this.onLog(`port ${p.id} (${name}) joined; ${this._ports.size} on the switch`);
    return p;
  }

  get portCount(): number {
    return this._ports.size;
  }

  /** The ports plugged in now, with their counters. */
  ports(): SwitchPort[] {
    return [...this._ports];
  }

  /** The port a MAC was last seen on (null when unknown or aged out), for tests and `info`. */
  lookup(mac: Uint8Array): SwitchPort | null {
    const e = this._table.get(macKey(mac, 0));
    return e && this._now() - e.at < this._ageMs ? e.port : null;
  }

  /** The learned MACs by port id, for logs and tests. */
  table(): { mac: string; port: number }[] {
    const out: { mac: string; port: number }[] = [];
    const now = this._now();
    for (const [k, e] of this._table) {
      if (now - e.at >= this._ageMs) continue;
      const b = new Uint8Array(6);
      let v = k;
      for (let i = 5; i >= 0; i--) {
        b[i] = v % 256;
        v = Math.floor(v / 256);
      }
      out.push({ mac: macText(b), port: e.port.id });
    }
    return out;
  }

  /** @internal (Port.remove) */
  removePort(p: Port): void {
    if (!this._ports.delete(p)) return;
    for (const [k, e] of this._table) if (e.port === p) this._table.delete(k);
    this.onLog(`port ${p.id} (${p.name}) left; ${this._ports.size} on the switch`);
  }

  /** @internal (Port.input) */
  forward(src: Port, frame: Uint8Array): void {
    if (!this._ports.has(src)) return; // a late frame from an unplugged port
    src.stats.in++;
    if (frame.length < 14) {
      this.stats.runts++;
      return;
    }
    if (frame[6] & 1) {
      this.stats.badSource++;
      return;
    }
    const now = this._now();
    const sk = macKey(frame, 6);
    const learned = this._table.get(sk);
    if (learned) {
      learned.port = src;
      learned.at = now;
    } else this._table.set(sk, { port: src, at: now });

    const f = frame.slice(); // ours from here: sinks may keep it
    if (!(frame[0] & 1)) {
      const e = this._table.get(macKey(frame, 0));
      if (e && now - e.at < this._ageMs) {
        if (e.port === src) this.stats.filtered++;
        else this._out(e.port, f);
        return;
      }
    }
    for (const p of this._ports) if (p !== src) this._out(p, f);
  }

  private _out(p: Port, f: Uint8Array): void {
    if (p.sink.put(f)) p.stats.out++;
    else p.stats.dropped++;
  }
}

/** The NIC side of the seam (matches devices/backends NetPort). */
interface Nic {
  canReceive(): boolean;
  receive(frame: Uint8Array): void;
}

/** Frames waiting for one NIC beyond this are dropped (the port's queue limit). */
export const LINK_QUEUE_MAX = 1024;

/**
 * A NIC of a machine in this process plugged into a switch: a NetBackend
 * (src/devices/backends.ts). Frames for the NIC wait in the port's queue
 * until the machine's next deliver() at a slice boundary.
 */
export class SwitchLink {
  private _nic: Nic | null = null;
  private _queue: Uint8Array[] = [];
  private _head = 0;
  readonly port: SwitchPort;

  constructor(sw: EthSwitch, name: string, private readonly _max = LINK_QUEUE_MAX) {
    this.port = sw.addPort(name, { put: (f) => this._put(f) });
  }

  private _put(f: Uint8Array): boolean {
    if (this._queue.length - this._head >= this._max) return false;
    this._queue.push(f);
    return true;
  }

  attach(nic: Nic, _wake: () => void): void {
    this._nic = nic;
  }

  send(frame: Uint8Array): void {
    this.port.input(frame);
  }

  deliver(): void {
    const n = this._nic;
    if (!n) return;
    while (this._head < this._queue.length && n.canReceive()) n.receive(this._queue[this._head++]);
    if (this._head === this._queue.length) {
      this._queue = [];
      this._head = 0;
    } else if (this._head > 256) {
      this._queue = this._queue.slice(this._head);
      this._head = 0;
    }
  }

  status(): { kind: string; queued: number; dropped: number } {
    return { kind: `switch port ${this.port.id} (in this process)`, queued: this._queue.length - this._head, dropped: this.port.stats.dropped };
  }

  close(): void {
    this.port.remove();
    this._queue = [];
    this._head = 0;
  }
}

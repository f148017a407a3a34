/**
 * Disk and network counters for a VM's stats: thin wrappers between each
 * device and its host backend that count what passes (bytes and operations
 * read and written per disk, bytes and frames received and sent per NIC).
 * They sit on the host side of the device seam, so no device changes and
 * nothing of the guest's state is involved: the counters start at zero with
 * each run, as QEMU's `info blockstats` do.
 */
import { blockReadv, blockWritev, type BlockBackend, type NetBackend, type NetBackendStatus, type NetPort } from '../devices/backends.js';

export interface DiskCounters {
  /** The drive as the VM names it: hda, hdb, cdrom, virtio-blk0, ... */
  name: string;
  readBytes: number;
  readOps: number;
  writtenBytes: number;
  writeOps: number;
  flushOps: number;
}

export interface NicCounters {
  /** nic0, nic1, ... in the order of the machine's NICs. */
  name: string;
  /** Frames the guest received (host to guest), and their bytes. */
  rxBytes: number;
  rxFrames: number;
  /** Frames the guest sent. */
  txBytes: number;
  txFrames: number;
}

class CountingBlock implements BlockBackend {
  constructor(
    private readonly _inner: BlockBackend,
    private readonly _c: DiskCounters,
  ) {}
  get sizeBytes(): number {
    return this._inner.sizeBytes;
  }
  get readOnly(): boolean {
    return this._inner.readOnly;
  }
  read(offset: number, dst: Uint8Array): void {
    this._inner.read(offset, dst);
    this._c.readBytes += dst.length;
    this._c.readOps++;
  }
  write(offset: number, src: Uint8Array): void {
    this._inner.write(offset, src);
    this._c.writtenBytes += src.length;
    this._c.writeOps++;
  }
  /** A vectored request counts as one operation, as the device made one. */
  readv(offset: number, dsts: readonly Uint8Array[]): void {
    blockReadv(this._inner, offset, dsts);
    for (const d of dsts) this._c.readBytes += d.length;
    this._c.readOps++;
  }
  writev(offset: number, srcs: readonly Uint8Array[]): void {
    blockWritev(this._inner, offset, srcs);
    for (const s of srcs) this._c.writtenBytes += s.length;
    this._c.writeOps++;
  }
  flush(): void {
    this._inner.flush();
    this._c.flushOps++;
  }
}

class CountingNet implements NetBackend {
  constructor(
    private readonly _inner: NetBackend,
    private readonly _c: NicCounters,
  ) {}
  attach(port: NetPort, wake: () => void): void {
    const c = this._c;
    this._inner.attach(
      {
        canReceive: () => port.canReceive(),
        // a large receive (gso) counts as one frame, as the guest gets it; it must reach the NIC as one
        receive(frame: Uint8Array, gso?: number): void {
          c.rxBytes += frame.length;
          c.rxFrames++;
          if (gso) port.receive(frame, gso);
          else port.receive(frame);
        },
        largeReceive: () => port.largeReceive?.() ?? 0,
      },
      wake,
    );
  }
  send(frame: Uint8Array): void {
    this._c.txBytes += frame.length;
    this._c.txFrames++;
    this._inner.send(frame);
  }
  deliver(): void {
    this._inner.deliver();
  }
  close(): void {
    this._inner.close();
  }
  status(): NetBackendStatus {
    return this._inner.status?.() ?? { kind: 'unknown', queued: 0, dropped: 0 };
  }
}

/** The counters of one machine's disks and NICs; wrap each backend as the machine is built. */
export class IoCounters {
  readonly disks: DiskCounters[] = [];
  readonly nics: NicCounters[] = [];

  disk(name: string, b: BlockBackend): BlockBackend {
    const c: DiskCounters = { name, readBytes: 0, readOps: 0, writtenBytes: 0, writeOps: 0, flushOps: 0 };
    this.disks.push(c);
    return new CountingBlock(b, c);
  }

  nic(b: NetBackend): NetBackend {
    const c: NicCounters = { name: `nic${this.nics.length}`, rxBytes: 0, rxFrames: 0, txBytes: 0, txFrames: 0 };
    this.nics.push(c);
    return new CountingNet(b, c);
  }

  /** A copy, for a message or a reply. */
  snapshot(): { disks: DiskCounters[]; nics: NicCounters[] } {
    return { disks: this.disks.map((d) => ({ ...d })), nics: this.nics.map((n) => ({ ...n })) };
  }
}

/**
 * virtio-blk (virtio 1.0, 5.2) over a BlockBackend: one request queue; each
 * request is a 16-byte header (type, reserved, sector), data buffers, and a
 * status byte in the last writable byte. Data moves directly between the
 * backend and guest RAM (no bounce copy), the whole request's buffers in one
 * vectored backend call (readv/writev), so a 512 KiB request of 128 pages is
 * one host call and not 128.
 *
 * Offered features: SEG_MAX, BLK_SIZE, FLUSH, and RO for a read-only
 * backend. A request out of the disk's range, of a length that is not whole
 * sectors, or that the backend fails gets VIRTIO_BLK_S_IOERR; an unknown type
 * gets UNSUPP; a chain too short to hold a header and a status byte is a
 * guest error (DEVICE_NEEDS_RESET, as QEMU's "missing headers").
 */
import { blockReadv, blockWritev, type BlockBackend } from '../backends.js';
import { le32, le64, put32, put64, VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain, VirtioError } from './queue.js';

export const enum BlkF {
  SEG_MAX = 2,
  RO = 5,
  BLK_SIZE = 6,
  FLUSH = 9,
}

export const enum BlkT {
  IN = 0,
  OUT = 1,
  FLUSH = 4,
  GET_ID = 8,
}

export const enum BlkS {
  OK = 0,
  IOERR = 1,
  UNSUPP = 2,
}

export const SECTOR = 512;
const HEADER = 16;
/** Data buffers per request the driver may use (QEMU's default: queue size - 2). */
const SEG_MAX = 254;
const ID_BYTES = 20;

export interface VirtioBlkOptions {
  /**
   * One backend read/write per data buffer instead of one vectored call per
   * request: the device as it was before readv, kept as the named baseline of
   * bench/blk-vectored.ts and as the reference in tests.
   */
  perPiece?: boolean;
}

export class VirtioBlk implements VirtioDevice {
  readonly type = VirtioId.BLOCK;
  readonly queueCount = 1;
  readonly features: readonly [number, number];
  readonly config = new Uint8Array(24);
  /** Requests completed, by outcome (diagnostics). */
  readonly counts = { ok: 0, ioerr: 0, unsupp: 0 };
  private _host!: VirtioHost;
  private readonly _chain = new Chain();
  private readonly _hdr = new Uint8Array(HEADER);
  private readonly _status = new Uint8Array(1);
  /** The current request's data buffers, as views of guest RAM (reused). */
  private readonly _views: Uint8Array[] = [];

  constructor(
    readonly id: string,
    private readonly _disk: BlockBackend,
    private readonly _serial = id,
    private readonly _opts: VirtioBlkOptions = {},
  ) {
    this.features = [(1 << BlkF.SEG_MAX) | (1 << BlkF.BLK_SIZE) | (1 << BlkF.FLUSH) | (_disk.readOnly ? 1 << BlkF.RO : 0), 0];
    put64(this.config, 0, Math.floor(_disk.sizeBytes / SECTOR));
    put32(this.config, 12, SEG_MAX);
    put32(this.config, 20, SECTOR);
  }

  attach(host: VirtioHost): void {
    this._host = host;
  }

  notify(q: number): void {
    const h = this._host;
    const queue = h.queues[q];
    const c = this._chain;
    let done = 0;
    while (queue.pop(h.ram, c)) {
      if (c.readBytes < HEADER || c.writeBytes < 1) throw new VirtioError(`${this.id}: request without header or status byte`);
      const written = this._request(c);
      queue.push(h.ram, c.head, written);
      done++;
    }
    if (done) h.used(queue);
  }

  /** Serve one request; returns the bytes written into the driver's buffers. */
  private _request(c: Chain): number {
    const ram = this._host.ram;
    c.read(ram, 0, this._hdr);
    const type = le32(this._hdr, 0);
    const sector = le64(this._hdr, 8);
    let status: number = BlkS.OK;
    let written = 0;
    switch (type) {
      case BlkT.IN: {
        const len = c.writeBytes - 1;
        if (!this._inRange(sector, len)) status = BlkS.IOERR;
        else {
          status = this._transfer(c, sector * SECTOR, len, false);
          if (status === BlkS.OK) written = len;
        }
        break;
      }
      case BlkT.OUT: {
        const len = c.readBytes - HEADER;
        if (this._disk.readOnly || !this._inRange(sector, len)) status = BlkS.IOERR;
        else status = this._transfer(c, sector * SECTOR, len, true);
        break;
      }
      case BlkT.FLUSH:
        try {
          this._disk.flush();
        } catch {
          status = BlkS.IOERR;
        }
        break;
      case BlkT.GET_ID: {
        const id = new Uint8Array(Math.min(ID_BYTES, c.writeBytes - 1));
        for (let i = 0; i < id.length && i < this._serial.length; i++) id[i] = this._serial.charCodeAt(i) & 0x7f;
        written = c.write(ram, 0, id);
        break;
      }
      default:
        status = BlkS.UNSUPP;
    }
    if (status === BlkS.OK) this.counts.ok++;
    else if (status === BlkS.IOERR) this.counts.ioerr++;
    else this.counts.unsupp++;
    this._status[0] = status;
    c.write(ram, c.writeBytes - 1, this._status);
    return written + 1;
  }

  private _inRange(sector: number, len: number): boolean {
    return len % SECTOR === 0 && sector * SECTOR + len <= this._disk.sizeBytes;
  }

  /**
   * Move `len` bytes between the disk at `pos` and the chain's data buffers:
   * for a write the readable buffers after the header, for a read the
   * writable buffers before the status byte. One vectored backend call for
   * the whole request (or one call per buffer with `perPiece`).
   */
  private _transfer(c: Chain, pos: number, len: number, toDisk: boolean): number {
    const ram = this._host.ram;
    let skip = toDisk ? HEADER : 0;
    const first = toDisk ? 0 : c.readable;
    const end = toDisk ? c.readable : c.count;
    const views = this._views;
    views.length = 0;
    for (let i = first; i < end && len > 0; i++) {
      let l = c.len[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const o = c.off[i] + skip;
      l = Math.min(l - skip, len);
      skip = 0;
      views.push(ram.bytes.subarray(o, o + l));
      len -= l;
    }
    if (views.length === 0) return BlkS.OK; // a request without data: nothing to move
    let status: number = BlkS.OK;
    try {
      if (this._opts.perPiece) {
        for (const v of views) {
          if (toDisk) this._disk.write(pos, v);
          else this._disk.read(pos, v);
          pos += v.length;
        }
      } else if (toDisk) blockWritev(this._disk, pos, views);
      else blockReadv(this._disk, pos, views);
    } catch {
      status = BlkS.IOERR;
    }
    // a failed read may have filled part of the buffers: mark them all
    if (!toDisk) for (const v of views) ram.written(v.byteOffset - ram.bytes.byteOffset, v.length);
    views.length = 0;
    return status;
  }

  reset(): void {}

  /** No state of its own: each request completes within the notification that brings it. */
  readonly stateFields = {};
  /** The counts are diagnostics of this run; the disk and its serial are configuration. */
  readonly stateTransient = ['counts', '_disk', '_serial', '_chain', '_hdr', '_status', '_views', '_opts'];
}

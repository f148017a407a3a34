/**
 * Split virtqueues (virtio 1.0, section 2.4): the descriptor table, the
 * driver's available ring and the device's used ring, all in guest RAM.
 *
 * Everything read from the rings is untrusted. A chain that loops, leaves
 * guest RAM, nests indirect tables, mixes the order of readable and writable
 * buffers, or is longer than the ring allows raises a VirtioError, which the
 * transport turns into the spec's DEVICE_NEEDS_RESET state (2.1.2): the
 * device stops using the queues until the driver resets it. Buffers are
 * handed to devices as host offsets into guest RAM, validated once, so a
 * device reads and writes guest memory in place and never outside it.
 *
 * VIRTIO_F_RING_EVENT_IDX (2.4.7, 2.4.8): the device publishes avail_event
 * after the used ring and suppresses interrupts with the driver's used_event;
 * without it, the avail ring's NO_INTERRUPT flag is honoured.
 */
import type { GuestRam } from '../../bus/dma.js';
import { bool, u16, u32, type Fields } from '../../state/schema.js';

/** A guest error in a queue: the device must enter DEVICE_NEEDS_RESET. */
export class VirtioError extends Error {}

export const enum VirtqDesc {
  SIZE = 16,
  F_NEXT = 1,
  F_WRITE = 2,
  F_INDIRECT = 4,
}

/** Largest ring the transport offers; the driver may pick any smaller power of two. */
export const VIRTQ_MAX_SIZE = 256;
/** Largest indirect table accepted (entries); Linux uses at most a ring's worth. */
export const VIRTQ_MAX_INDIRECT = 1024;
/** Largest total buffer length of one chain (each direction); anything beyond is a guest error. */
export const VIRTQ_MAX_CHAIN_BYTES = 256 * 1024 * 1024;
/** The avail ring's flag asking for no interrupts (without EVENT_IDX). */
const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/**
 * One descriptor chain taken from the available ring: its buffers as host
 * offsets into guest RAM, readable (driver to device) first, then writable.
 * Reused between requests (no allocation per request).
 */
export class Chain {
  head = 0;
  count = 0;
  /** Number of leading readable buffers; the rest are writable. */
  readable = 0;
  readBytes = 0;
  writeBytes = 0;
  off = new Uint32Array(VIRTQ_MAX_SIZE + VIRTQ_MAX_INDIRECT);
  len = new Uint32Array(VIRTQ_MAX_SIZE + VIRTQ_MAX_INDIRECT);

  /** Copy up to `dst.length` bytes of the readable part starting at byte `from`; returns bytes copied. */
  read(ram: GuestRam, from: number, dst: Uint8Array): number {
    let pos = 0;
    let skip = from;
    for (let i = 0; i < this.readable && pos < dst.length; i++) {
      const l = this.len[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const n = Math.min(l - skip, dst.length - pos);
      const o = this.off[i] + skip;
      dst.set(ram.bytes.subarray(o, o + n), pos);
      pos += n;
      skip = 0;
    }
    return pos;
  }

  /** All the readable bytes, copied (at most `max`). */
  readAll(ram: GuestRam, max = this.readBytes): Uint8Array {
    const out = new Uint8Array(Math.min(this.readBytes, max));
    this.read(ram, 0, out);
    return out;
  }

  /** Write `src` into the writable part starting at byte `from`; returns bytes written. */
  write(ram: GuestRam, from: number, src: Uint8Array): number {
    let pos = 0;
    let skip = from;
    for (let i = this.readable; i < this.count && pos < src.length; i++) {
      const l = this.len[i];
      if (skip >= l) {
        skip -= l;
        continue;
      }
      const n = Math.min(l - skip, src.length - pos);
      const o = this.off[i] + skip;
      ram.bytes.set(src.subarray(pos, pos + n), o);
      ram.written(o, n);
      pos += n;
      skip = 0;
    }
    return pos;
  }
}

/**
 * A queue's declared state (the transport holds one per queue): what the
 * driver programmed and the device's positions in the rings. The host
 * offsets of the three areas are derived (enable() recomputes them), and so
 * are eventIdx and indirect (the negotiated features).
 */
export const VIRTQ_STATE_FIELDS: Fields = {
  size: u16,
  ready: bool,
  descAddr: u32,
  availAddr: u32,
  usedAddr: u32,
  msixVector: u16,
  lastAvail: u16,
  usedIdx: u16,
  /** used idx at the last interrupt decision (for EVENT_IDX). */
  signalledUsed: u16,
};
/** VirtQueue properties that are not state: its place and capacity (wiring), and what follows from the state. */
export const VIRTQ_TRANSIENT = ['index', 'maxSize', 'eventIdx', 'indirect', '_desc', '_avail', '_used'];

export class VirtQueue {
  size = VIRTQ_MAX_SIZE;
  ready = false;
  descAddr = 0;
  availAddr = 0;
  usedAddr = 0;
  msixVector = 0xffff;
  /** Next avail ring index the device will consume. */
  lastAvail = 0;
  /** Next used ring index the device will write (its published used idx). */
  usedIdx = 0;
  signalledUsed = 0;
  /** Whether VIRTIO_F_RING_EVENT_IDX was negotiated (set by the transport). */
  eventIdx = false;
  /** Whether VIRTIO_F_RING_INDIRECT_DESC was negotiated. */
  indirect = false;
  // validated host offsets of the three areas (set by enable())
  private _desc = 0;
  private _avail = 0;
  private _used = 0;

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descAddr = this.availAddr = this.usedAddr = 0;
    this.msixVector = 0xffff;
    this.lastAvail = this.usedIdx = this.signalledUsed = 0;
    this._desc = this._avail = this._used = 0;
  }

  /**
   * The driver set queue_enable: check the size and that the three areas lie
   * in guest RAM with the spec's alignment (2.4: 16, 2, 4).
   */
  enable(ram: GuestRam): void {
    const bad = ringsProblem(this.index, this.maxSize, this, ram);
    if (bad) throw new VirtioError(bad);
    this._desc = ram.offset(this.descAddr, 16 * this.size);
    this._avail = ram.offset(this.availAddr, 6 + 2 * this.size);
    this._used = ram.offset(this.usedAddr, 6 + 8 * this.size);
    this.ready = true;
  }

  /** Recompute the host offsets after a state load (a ready queue's rings were checked with ringsProblem() first). */
  revalidate(ram: GuestRam): void {
    if (this.ready) this.enable(ram);
  }

  private _u16(off: number, ram: GuestRam): number {
    const b = ram.bytes;
    return b[off] | (b[off + 1] << 8);
  }

  private _put16(off: number, v: number, ram: GuestRam): void {
    const b = ram.bytes;
    b[off] = v & 0xff;
    b[off + 1] = (v >>> 8) & 0xff;
    ram.written(off, 2);
  }

  /** Buffers the driver has made available and the device has not taken. */
  pending(ram: GuestRam): number {
    if (!this.ready) return 0;
    return (this._u16(this._avail + 2, ram) - this.lastAvail) & 0xffff;
  }

  /**
   * Take the next available chain into `c`. False when the ring is empty.
   * Throws VirtioError for a malformed chain or a driver that claims more
   * buffers than the ring holds.
   */
  pop(ram: GuestRam, c: Chain): boolean {
    if (!this.ready) return false;
    const n = this.pending(ram);
    if (n === 0) return false;
    if (n > this.size) throw new VirtioError(`queue ${this.index}: avail idx moved ${n} entries on a ring of ${this.size}`);
    const head = this._u16(this._avail + 4 + 2 * (this.lastAvail % this.size), ram);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) this._put16(this._used + 4 + 8 * this.size, this.lastAvail, ram);
    this._walk(ram, head, c);
    return true;
  }

  private _walk(ram: GuestRam, head: number, c: Chain): void {
    if (head >= this.size) throw new VirtioError(`queue ${this.index}: head descriptor ${head} is beyond the ring of ${this.size}`);
    const b = ram.bytes;
    c.head = head;
    c.count = c.readable = c.readBytes = c.writeBytes = 0;
    let table = this._desc;
    let tableLen = this.size;
    let i = head;
    let budget = this.size; // descriptors left before the chain must have ended
    let inIndirect = false;
    for (;;) {
      if (budget-- <= 0) throw new VirtioError(`queue ${this.index}: descriptor chain from ${head} loops or is too long`);
      const d = table + 16 * i;
      const addrLo = (b[d] | (b[d + 1] << 8) | (b[d + 2] << 16) | (b[d + 3] << 24)) >>> 0;
      const addrHi = (b[d + 4] | (b[d + 5] << 8) | (b[d + 6] << 16) | (b[d + 7] << 24)) >>> 0;
      const len = (b[d + 8] | (b[d + 9] << 8) | (b[d + 10] << 16) | (b[d + 11] << 24)) >>> 0;
      const flags = b[d + 12] | (b[d + 13] << 8);
      const next = b[d + 14] | (b[d + 15] << 8);
      if (addrHi !== 0) throw new VirtioError(`queue ${this.index}: descriptor address above 4 GiB`);
      if (flags & VirtqDesc.F_INDIRECT) {
        if (!this.indirect) throw new VirtioError(`queue ${this.index}: indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC`);
        if (inIndirect) throw new VirtioError(`queue ${this.index}: indirect table inside an indirect table`);
        if (flags & VirtqDesc.F_NEXT) throw new VirtioError(`queue ${this.index}: indirect descriptor with NEXT set`);
        if (len === 0 || len % 16 !== 0 || len / 16 > VIRTQ_MAX_INDIRECT) throw new VirtioError(`queue ${this.index}: indirect table of ${len} bytes`);
        const t = ram.offset(addrLo, len);
        if (t < 0) throw new VirtioError(`queue ${this.index}: indirect table outside guest RAM`);
        table = t;
        tableLen = len / 16;
        budget = tableLen;
        inIndirect = true;
        i = 0;
        continue;
      }
      const o = ram.offset(addrLo, len);
      if (o < 0) throw new VirtioError(`queue ${this.index}: buffer [${addrLo.toString(16)}, +${len}) is outside guest RAM`);
      if (flags & VirtqDesc.F_WRITE) {
        c.writeBytes += len;
        if (c.writeBytes > VIRTQ_MAX_CHAIN_BYTES) throw new VirtioError(`queue ${this.index}: chain of more than ${VIRTQ_MAX_CHAIN_BYTES} bytes`);
      } else {
        if (c.count !== c.readable) throw new VirtioError(`queue ${this.index}: readable buffer after a writable one`);
        c.readable++;
        c.readBytes += len;
        if (c.readBytes > VIRTQ_MAX_CHAIN_BYTES) throw new VirtioError(`queue ${this.index}: chain of more than ${VIRTQ_MAX_CHAIN_BYTES} bytes`);
      }
      c.off[c.count] = o;
      c.len[c.count] = len;
      c.count++;
      if (!(flags & VirtqDesc.F_NEXT)) return;
      if (next >= tableLen) throw new VirtioError(`queue ${this.index}: next descriptor ${next} is beyond the table of ${tableLen}`);
      i = next;
    }
  }

  /** Return a chain to the driver with `written` bytes written into its writable buffers. */
  push(ram: GuestRam, head: number, written: number): void {
    if (!this.ready) return;
    const e = this._used + 4 + 8 * (this.usedIdx % this.size);
    const b = ram.bytes;
    b[e] = head & 0xff;
    b[e + 1] = (head >>> 8) & 0xff;
    b[e + 2] = b[e + 3] = 0;
    b[e + 4] = written & 0xff;
    b[e + 5] = (written >>> 8) & 0xff;
    b[e + 6] = (written >>> 16) & 0xff;
    b[e + 7] = (written >>> 24) & 0xff;
    ram.written(e, 8);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this._put16(this._used + 2, this.usedIdx, ram);
  }

  /**
   * Whether the driver wants an interrupt for the buffers used since the last
   * call (2.4.7.2): EVENT_IDX's used_event crossing, else the NO_INTERRUPT flag.
   */
  shouldInterrupt(ram: GuestRam): boolean {
    if (!this.ready) return false;
    const old = this.signalledUsed;
    const now = this.usedIdx;
    this.signalledUsed = now;
    if (old === now) return false;
    if (this.eventIdx) {
      const event = this._u16(this._avail + 4 + 2 * this.size, ram);
      // vring_need_event: the driver asked to hear once used idx passes `event`
      return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    return (this._u16(this._avail, ram) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

}

/**
 * What is wrong with a queue's size and ring addresses, or null: the size a
 * power of two up to the queue's maximum, the three areas in guest RAM with
 * the spec's alignment (2.4: 16, 2, 4). enable() and a state load both ask.
 */
export function ringsProblem(index: number, maxSize: number, q: { size: number; descAddr: number; availAddr: number; usedAddr: number }, ram: GuestRam): string | null {
  const n = q.size;
  if (n === 0 || n > maxSize || (n & (n - 1)) !== 0) return `queue ${index}: size ${n} is not a power of two up to ${maxSize}`;
  if (q.descAddr % 16 || q.availAddr % 2 || q.usedAddr % 4) return `queue ${index}: ring addresses are misaligned`;
  if (ram.offset(q.descAddr, 16 * n) < 0 || ram.offset(q.availAddr, 6 + 2 * n) < 0 || ram.offset(q.usedAddr, 6 + 8 * n) < 0) return `queue ${index}: a ring lies outside guest RAM`;
  return null;
}

/**
 * A small virtio driver for tests: it owns 1 MiB of fake guest RAM, drives a
 * VirtioPci transport through its BAR registers as Linux's virtio_pci_modern
 * does (status handshake, feature negotiation, queue set-up, notifications),
 * and builds descriptor chains, direct or indirect, in that RAM.
 */
import { FlatGuestRam } from '../../src/bus/dma.js';
import { TestIrqLine } from '../../src/bus/irq.js';
import { VirtioF, type VirtioDevice } from '../../src/devices/virtio/device.js';
import { Common, VirtioBar, VirtioPci, VirtioStatus } from '../../src/devices/virtio/pci.js';

export const RAM_BYTES = 1 << 20;
/** Bytes either side of guest RAM that no device may touch (checked by guardsIntact). */
const GUARD = 64 * 1024;
const GUARD_BYTE = 0xa5;
/** Rings of queue i live at RING_BASE + i * RING_STRIDE. */
const RING_BASE = 0x10000;
const RING_STRIDE = 0x4000;
/** Buffers are bump-allocated from here. */
const DATA_BASE = 0x40000;

export interface Seg {
  /** Bytes the driver gives the device (readable). */
  out?: Uint8Array;
  /** Bytes the device may write. */
  inLen?: number;
}

export interface Used {
  head: number;
  len: number;
  /** The writable buffers' contents after completion, concatenated. */
  data: Uint8Array;
}

export class VirtioDriver {
  private readonly _backing = new Uint8Array(RAM_BYTES + 2 * GUARD).fill(GUARD_BYTE);
  readonly mem = this._backing.subarray(GUARD, GUARD + RAM_BYTES).fill(0);
  readonly ram = new FlatGuestRam(this.mem);
  readonly pci: VirtioPci;
  readonly intx = new TestIrqLine();
  readonly msis: { addr: number; data: number }[] = [];
  private _next = DATA_BASE;
  private readonly _size: number[] = [];
  private readonly _availIdx: number[] = [];
  private readonly _usedSeen: number[] = [];
  private readonly _freeHead: number[] = [];
  /** head -> writable segments of the chain (addr, len) */
  private readonly _pending = new Map<string, [number, number][]>();

  constructor(dev: VirtioDevice | ((ram: FlatGuestRam) => VirtioDevice)) {
    const d = typeof dev === 'function' ? dev(this.ram) : dev;
    this.pci = new VirtioPci(d, this.ram);
    this.pci.connectIntx(this.intx);
    this.pci.msix.sink = (addr, _hi, data) => this.msis.push({ addr, data });
    this.pci.reset();
  }

  /** True when no byte outside guest RAM was written. */
  guardsIntact(): boolean {
    const b = this._backing;
    for (let i = 0; i < GUARD; i++) if (b[i] !== GUARD_BYTE || b[GUARD + RAM_BYTES + i] !== GUARD_BYTE) return false;
    return true;
  }

  r(off: number, size: number): number {
    return this.pci.barRead(VirtioBar.CFG_BAR, off, size);
  }
  w(off: number, v: number, size: number): void {
    this.pci.barWrite(VirtioBar.CFG_BAR, off, v, size);
  }
  get status(): number {
    return this.r(Common.STATUS, 1);
  }
  deviceConfig(off: number, size: number): number {
    return this.r(VirtioBar.DEVICE + off, size);
  }

  /** The device's 64 feature bits as [lo, hi]. */
  deviceFeatures(): [number, number] {
    this.w(Common.DFSELECT, 0, 4);
    const lo = this.r(Common.DF, 4);
    this.w(Common.DFSELECT, 1, 4);
    return [lo, this.r(Common.DF, 4)];
  }

  /**
   * Linux's probe sequence. `features` are extra bits to accept (beyond
   * VERSION_1 and, unless disabled, INDIRECT_DESC and EVENT_IDX).
   */
  init(opts: { eventIdx?: boolean; indirect?: boolean; features?: [number, number]; queueSize?: number; msix?: boolean } = {}): void {
    this.w(Common.STATUS, 0, 1);
    this.w(Common.STATUS, VirtioStatus.ACKNOWLEDGE, 1);
    this.w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER, 1);
    let lo = opts.features?.[0] ?? 0;
    if (opts.eventIdx !== false) lo |= 1 << VirtioF.RING_EVENT_IDX;
    if (opts.indirect !== false) lo |= 1 << VirtioF.RING_INDIRECT_DESC;
    const hi = (opts.features?.[1] ?? 0) | 1;
    this.w(Common.GFSELECT, 0, 4);
    this.w(Common.GF, lo >>> 0, 4);
    this.w(Common.GFSELECT, 1, 4);
    this.w(Common.GF, hi, 4);
    this.w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK, 1);
    if (opts.msix) {
      this.pci.writeConfig(0x04, 0x6, 2); // memory + bus master
      this.pci.writeConfig(0x42, 0x8000, 2); // MSI-X enable
      this.w(Common.MSIX_CONFIG, 0, 2);
    }
    const n = this.r(Common.NUM_QUEUES, 2);
    for (let q = 0; q < n; q++) {
      this.w(Common.Q_SELECT, q, 2);
      const size = opts.queueSize ?? this.r(Common.Q_SIZE, 2);
      this.w(Common.Q_SIZE, size, 2);
      const base = RING_BASE + q * RING_STRIDE;
      this.mem.fill(0, base, base + RING_STRIDE); // a driver allocates zeroed rings
      this.w(Common.Q_DESCLO, base, 4);
      this.w(Common.Q_DESCHI, 0, 4);
      this.w(Common.Q_AVAILLO, base + 16 * size, 4);
      this.w(Common.Q_AVAILHI, 0, 4);
      this.w(Common.Q_USEDLO, (base + 16 * size + 6 + 2 * size + 4095) & ~4095, 4);
      this.w(Common.Q_USEDHI, 0, 4);
      if (opts.msix) {
        this.w(Common.Q_MSIX, q + 1, 2);
        for (let v = 0; v <= n; v++) this.pci.barWrite(VirtioBar.MSIX_BAR, 16 * v + 12, 0, 4); // unmask
        for (let v = 0; v <= n; v++) {
          this.pci.barWrite(VirtioBar.MSIX_BAR, 16 * v, 0xfee00000, 4);
          this.pci.barWrite(VirtioBar.MSIX_BAR, 16 * v + 8, 0x40 + v, 4);
        }
      }
      this.w(Common.Q_ENABLE, 1, 2);
      this._size[q] = size;
      this._availIdx[q] = 0;
      this._usedSeen[q] = 0;
      this._freeHead[q] = 0;
      for (const k of [...this._pending.keys()]) if (k.startsWith(`${q}:`)) this._pending.delete(k);
    }
    this.w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK, 1);
  }

  /** Take over another driver's bookkeeping (after loading its device state and RAM). */
  adopt(o: VirtioDriver): void {
    this.mem.set(o.mem);
    this._next = o._next;
    this._size.splice(0, Infinity, ...o._size);
    this._availIdx.splice(0, Infinity, ...o._availIdx);
    this._usedSeen.splice(0, Infinity, ...o._usedSeen);
    this._freeHead.splice(0, Infinity, ...o._freeHead);
    for (const [k, v] of o._pending) this._pending.set(k, v);
  }

  alloc(n: number): number {
    const a = this._next;
    this._next = (this._next + n + 15) & ~15;
    if (this._next > RAM_BYTES) {
      this._next = DATA_BASE;
      return this.alloc(n);
    }
    return a;
  }

  ringBase(q: number): { desc: number; avail: number; used: number } {
    const size = this._size[q];
    const base = RING_BASE + q * RING_STRIDE;
    return { desc: base, avail: base + 16 * size, used: (base + 16 * size + 6 + 2 * size + 4095) & ~4095 };
  }

  private _put16(a: number, v: number): void {
    this.mem[a] = v & 0xff;
    this.mem[a + 1] = v >>> 8;
  }
  private _put32(a: number, v: number): void {
    new DataView(this.mem.buffer, this.mem.byteOffset).setUint32(a, v >>> 0, true);
  }
  u16(a: number): number {
    return this.mem[a] | (this.mem[a + 1] << 8);
  }
  u32(a: number): number {
    return new DataView(this.mem.buffer, this.mem.byteOffset).getUint32(a, true);
  }

  /** Write descriptor `i` of the table at `table`. */
  desc(table: number, i: number, addr: number, len: number, flags: number, next: number): void {
    const d = table + 16 * i;
    this._put32(d, addr);
    this._put32(d + 4, 0);
    this._put32(d + 8, len);
    this._put16(d + 12, flags);
    this._put16(d + 14, next);
  }

  /** Make head descriptor `head` available on queue q (no notification). */
  publish(q: number, head: number): void {
    const { avail } = this.ringBase(q);
    const idx = this._availIdx[q];
    this._put16(avail + 4 + 2 * (idx % this._size[q]), head);
    this._availIdx[q] = (idx + 1) & 0xffff;
    this._put16(avail + 2, this._availIdx[q]);
  }

  notify(q: number): void {
    this.w(VirtioBar.NOTIFY + VirtioBar.NOTIFY_MULTIPLIER * q, q, 2);
  }

  /** Put a chain of segments on queue q, direct or through an indirect table; returns its head. */
  add(q: number, segs: Seg[], indirect = false): number {
    const size = this._size[q];
    const { desc } = this.ringBase(q);
    const writable: [number, number][] = [];
    const bufs = segs.map((s) => {
      const len = s.out ? s.out.length : (s.inLen ?? 0);
      const a = this.alloc(Math.max(len, 1));
      if (s.out) this.mem.set(s.out, a);
      else {
        this.mem.fill(0xee, a, a + len);
        writable.push([a, len]);
      }
      return { a, len, write: !s.out };
    });
    let head: number;
    if (indirect) {
      const t = this.alloc(16 * bufs.length);
      bufs.forEach((b, i) => this.desc(t, i, b.a, b.len, (b.write ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0), i + 1));
      head = this._freeHead[q];
      this._freeHead[q] = (head + 1) % size;
      this.desc(desc, head, t, 16 * bufs.length, 4, 0);
    } else {
      const ids = bufs.map(() => {
        const h = this._freeHead[q];
        this._freeHead[q] = (h + 1) % size;
        return h;
      });
      bufs.forEach((b, i) => this.desc(desc, ids[i], b.a, b.len, (b.write ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0), ids[i + 1] ?? 0));
      head = ids[0];
    }
    this._pending.set(`${q}:${head}`, writable);
    this.publish(q, head);
    return head;
  }

  /** Used entries the device returned on queue q since the last call. */
  takeUsed(q: number): Used[] {
    const { used } = this.ringBase(q);
    const out: Used[] = [];
    const idx = this.u16(used + 2);
    while (this._usedSeen[q] !== idx) {
      const e = used + 4 + 8 * (this._usedSeen[q] % this._size[q]);
      const head = this.u32(e);
      const len = this.u32(e + 4);
      const segs = this._pending.get(`${q}:${head}`) ?? [];
      this._pending.delete(`${q}:${head}`);
      const data = new Uint8Array(segs.reduce((n, [, l]) => n + l, 0));
      let p = 0;
      for (const [a, l] of segs) {
        data.set(this.mem.subarray(a, a + l), p);
        p += l;
      }
      out.push({ head, len, data });
      this._usedSeen[q] = (this._usedSeen[q] + 1) & 0xffff;
    }
    return out;
  }

  /** Add a chain, notify, and return its completion (undefined if the device kept it). */
  request(q: number, segs: Seg[], indirect = false): Used | undefined {
    this.add(q, segs, indirect);
    this.notify(q);
    return this.takeUsed(q)[0];
  }
}

/** A seeded xorshift32 generator (fuzzers and deterministic entropy). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Entropy for tests: the same bytes every run. */
export class SeededEntropy {
  private readonly _next: () => number;
  constructor(seed: number) {
    this._next = rng(seed);
  }
  fill(dst: Uint8Array): void {
    for (let i = 0; i < dst.length; i++) dst[i] = this._next() & 0xff;
  }
}

/**
 * A seeded fuzzer for one device: interleaves well-formed requests (from
 * `valid`) with corrupted descriptor tables (loops, addresses beyond RAM,
 * huge lengths, bad flags), avail indexes that jump, queue sizes that are not
 * powers of two, random register writes and resets. Throws if the device
 * throws, writes outside guest RAM, or does not work again after a reset.
 */
export function fuzzDevice(d: VirtioDriver, seed: number, steps: number, valid: (d: VirtioDriver, check: boolean) => void): { needsReset: number } {
  const next = rng(seed);
  const pick = (n: number) => next() % n;
  const wild = (): number => {
    switch (pick(6)) {
      case 0:
        return 0xffffffff;
      case 1:
        return RAM_BYTES - 1 - pick(64);
      case 2:
        return pick(RAM_BYTES);
      case 3:
        return 0x80000000 + pick(0x1000);
      case 4:
        return 0;
      default:
        return next();
    }
  };
  let needsReset = 0;
  d.init();
  for (let step = 0; step < steps; step++) {
    const nq = d.pci.queues.length;
    const q = pick(nq);
    const { desc, avail } = d.ringBase(q);
    const size = d.pci.queues[q].size || 1;
    switch (pick(10)) {
      case 0:
      case 1:
      case 2:
        valid(d, false);
        break;
      case 3: {
        // a table of random descriptors, some pointing at each other (loops), some indirect
        const n = 1 + pick(8);
        for (let i = 0; i < n; i++) d.desc(desc, pick(size), wild(), pick(3) ? pick(4096) : wild(), pick(8), pick(size + 2));
        d.publish(q, pick(size + 1));
        d.notify(q);
        break;
      }
      case 4: {
        // an indirect table with a loop or a nested indirect
        const t = d.alloc(64);
        d.desc(t, 0, d.alloc(16), 16, 1, 1);
        d.desc(t, 1, pick(2) ? t : d.alloc(16), 16, pick(2) ? 1 : 4 | 1, pick(2));
        d.desc(t, 2, wild(), wild(), pick(8), pick(4));
        d.desc(desc, 0, t, pick(2) ? 48 : wild(), 4 | pick(4), 0);
        d.publish(q, 0);
        d.notify(q);
        break;
      }
      case 5: {
        // the avail index jumps
        d.mem[avail + 2] = next() & 0xff;
        d.mem[avail + 3] = next() & 0xff;
        d.notify(q);
        break;
      }
      case 6: {
        // queue registers: a size that is not a power of two, rings outside RAM
        d.w(Common.STATUS, 0, 1);
        d.w(Common.STATUS, 3, 1);
        d.w(Common.Q_SELECT, q, 2);
        d.w(Common.Q_SIZE, pick(2) ? 3 + pick(300) : 1 << pick(10), 2);
        d.w(Common.Q_DESCLO, pick(2) ? wild() : desc, 4);
        d.w(Common.Q_AVAILLO, avail, 4);
        d.w(Common.Q_USEDLO, pick(2) ? wild() : d.ringBase(q).used, 4);
        d.w(Common.Q_ENABLE, 1, 2);
        d.w(Common.STATUS, 0xf, 1);
        d.notify(q);
        break;
      }
      case 7:
        // random register and device-config writes of every width
        d.w(pick(VirtioBar.CFG_BAR_SIZE), next(), [1, 2, 4][pick(3)]);
        d.r(pick(VirtioBar.CFG_BAR_SIZE), [1, 2, 4][pick(3)]);
        break;
      case 8:
        d.w(VirtioBar.DEVICE + pick(64), next(), [1, 2, 4][pick(3)]);
        break;
      default:
        if (d.status & VirtioStatus.DEVICE_NEEDS_RESET) needsReset++;
        d.init();
    }
    if (!d.guardsIntact()) throw new Error(`step ${step}: the device wrote outside guest RAM`);
  }
  d.init();
  valid(d, true);
  if (d.status & VirtioStatus.DEVICE_NEEDS_RESET) throw new Error(`after reset the device still needs reset: ${d.pci.lastError}`);
  return { needsReset: needsReset + d.pci.errors };
}

/**
 * qcow2 images (QEMU's docs/interop/qcow2.txt), versions 2 and 3: reads of
 * standard, zero, unallocated (backing file) and compressed clusters; writes
 * that allocate clusters with correct refcounts, in an order that a crash at
 * any point turns into leaked clusters at worst, never into corruption
 * (docs/storage.md, "Crash safety").
 *
 * Every table offset is checked against the file and against the other
 * metadata before it is used; a damaged image is refused with a StorageError.
 */
import { readFull, readFullv, StorageError, writeAllv, type DiskImage, type StorageFile } from './file.js';
import { IovCursor, iovCopyIn, iovCopyOut, iovFill, iovIsZero, iovLength, type IoVec } from './iovec.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY, parseQcow2Header, type Qcow2Header } from './qcow2-header.js';

export interface Qcow2Options {
  /** Refuse writes. */
  readOnly: boolean;
  /** What unallocated clusters read as (the opened backing file), or null for zeros. */
  backing: DiskImage | null;
  /** Raw deflate decompression (StorageHost.inflateRaw); needed only for compressed clusters. */
  inflateRaw?: (src: Uint8Array, dst: Uint8Array) => number;
  /**
   * fsync between the stages of an allocating write (data+refcounts, then L2,
   * then L1, then frees), so that a power loss also leaves a consistent image.
   * Without it the order of writes is the same, which already protects against
   * the process being killed. Default true.
   */
  barriers?: boolean;
}

const COPIED = 0x80000000; // bit 63 (in the high word)
const COMPRESSED = 0x40000000; // bit 62
const L2_RESERVED_HI = 0x3f000000; // bits 56-61
const L2_RESERVED_LO = 0x000001fe; // bits 1-8
const OFFSET_HI = 0x00ffffff; // bits 32-55
const OFFSET_LO = 0xfffffe00; // bits 9-31
const MAX_CACHED_TABLES = 256;
/** Commit the metadata kept in memory once this many tables or frees are pending (besides every flush). */
const MAX_DIRTY_TABLES = 64;
const MAX_PENDING_FREES = 4096;
/** QEMU's limits: L1 up to 32 MiB, refcount table up to 8 MiB. */
const MAX_L1_BYTES = 32 << 20;
const MAX_REFTABLE_BYTES = 8 << 20;

type Kind = 0 | 1 | 2 | 3;
const UNALLOCATED: Kind = 0;
const ZERO: Kind = 1;
const NORMAL: Kind = 2;
const COMPRESSED_KIND: Kind = 3;

/** A decoded L2 entry. */
interface Mapping {
  kind: Kind;
  /** Host offset of a standard cluster (0 for none), or of a compressed cluster's data. */
  host: number;
  /** Bit 63: refcount is exactly one (in-place writes allowed). */
  copied: boolean;
  /** Compressed: bytes of compressed data to read from host. */
  compressedBytes: number;
}

/** One guest cluster a write touches. */
interface WritePiece {
  gc: number;
  within: number;
  /** The bytes for this cluster: views into the request's buffers. */
  src: Uint8Array[];
  len: number;
  map: Mapping;
  /** The new L2 entry (hi, lo) once decided. */
  hi: number;
  lo: number;
  /** Full cluster content to write at a fresh cluster (one buffer, or the request's views of a whole cluster), or null. */
  fresh: Uint8Array[] | null;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

export class Qcow2Image implements DiskImage {
  readonly format = 'qcow2';
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly header: Qcow2Header;
  readonly clusterSize: number;
  private readonly _cb: number;
  private readonly _l2Entries: number;
  private readonly _l2Bits: number;
  private readonly _refBits: number;
  private readonly _refPerBlock: number;
  private readonly _refMax: number;
  private readonly _l1: Float64Array; // L2 table offsets (0: none)
  private _reftable: Float64Array; // refcount block offsets
  private _reftableOffset: number;
  private _reftableClusters: number;
  private readonly _meta = new Map<number, string>(); // cluster index -> what metadata lives there
  private readonly _l2Cache = new Map<number, Uint8Array>();
  private readonly _refCache = new Map<number, Uint8Array>();
  private _fileSize: number;
  private _nextFree: number;
  private _zcCluster = -1; // host offset of the cached decompressed cluster
  private readonly _zcBuf: Uint8Array;
  private readonly _barriers: boolean;
  private _closed = false;
  /** Metadata updates not yet on disk (see _commit). */
  private readonly _dirtyL2 = new Set<number>();
  private readonly _pendingL1 = new Set<number>();
  private _pendingFrees: [number, number][] = [];

  private constructor(
    readonly file: StorageFile,
    h: Qcow2Header,
    private readonly _opts: Qcow2Options,
  ) {
    const name = file.name;
    this.header = h;
    this._cb = h.clusterBits;
    this.clusterSize = 2 ** h.clusterBits;
    this._l2Entries = this.clusterSize / 8;
    this._l2Bits = h.clusterBits - 3;
    this._refBits = 2 ** h.refcountOrder;
    this._refPerBlock = (this.clusterSize * 8) / this._refBits;
    this._refMax = 2 ** Math.min(this._refBits, 53) - 1;
    this._fileSize = file.size();
    this.sizeBytes = h.size;
    this._barriers = _opts.barriers ?? true;
    this._zcBuf = new Uint8Array(this.clusterSize);
    this.readOnly = _opts.readOnly || file.readOnly;

    const C = this.clusterSize;
    const bad = (msg: string) => new StorageError('BAD_IMAGE', `${name}: ${msg}; the image is damaged (qemu-img check ${name} may say more)`);
    const inFile = (off: number, len: number) => off + len <= this._fileSize;

    // L1 table
    const perL1 = C * this._l2Entries;
    const needL1 = Math.ceil(h.size / perL1);
    if (h.l1Size < needL1) throw bad(`the L1 table has ${h.l1Size} entries, too few for a ${h.size}-byte disk (needs ${needL1})`);
    if (h.l1Size * 8 > MAX_L1_BYTES) throw bad(`the L1 table (${h.l1Size} entries) is larger than 32 MiB`);
    if (h.l1Size > 0) {
      if (h.l1TableOffset === 0 || h.l1TableOffset % C !== 0) throw bad(`the L1 table offset ${hex(h.l1TableOffset)} is not a non-zero multiple of the cluster size`);
      if (!inFile(h.l1TableOffset, h.l1Size * 8)) throw bad(`the L1 table (${hex(h.l1TableOffset)}, ${h.l1Size * 8} bytes) lies outside the ${this._fileSize}-byte file`);
    }
    // refcount table
    if (h.refcountTableClusters === 0) throw bad('the refcount table has no clusters');
    if (h.refcountTableClusters * C > MAX_REFTABLE_BYTES) throw bad(`the refcount table (${h.refcountTableClusters} clusters) is larger than 8 MiB`);
    if (h.refcountTableOffset === 0 || h.refcountTableOffset % C !== 0) throw bad(`the refcount table offset ${hex(h.refcountTableOffset)} is not a non-zero multiple of the cluster size`);
    if (!inFile(h.refcountTableOffset, h.refcountTableClusters * C)) throw bad(`the refcount table (${hex(h.refcountTableOffset)}, ${h.refcountTableClusters} clusters) lies outside the ${this._fileSize}-byte file`);
    if (h.nbSnapshots > 0 && (h.snapshotsOffset % C !== 0 || h.snapshotsOffset === 0 || h.snapshotsOffset >= this._fileSize)) {
      throw bad(`the snapshot table offset ${hex(h.snapshotsOffset)} is not a cluster inside the file`);
    }

    this._claim(0, 1, 'the header', bad);
    this._claim(h.l1TableOffset / C, Math.ceil((h.l1Size * 8) / C), 'the L1 table', bad);
    this._claim(h.refcountTableOffset / C, h.refcountTableClusters, 'the refcount table', bad);

    this._l1 = new Float64Array(h.l1Size);
    if (h.l1Size > 0) {
      const raw = new Uint8Array(h.l1Size * 8);
      this._readMeta(h.l1TableOffset, raw);
      const v = new DataView(raw.buffer);
      for (let i = 0; i < h.l1Size; i++) {
        const hi = v.getUint32(i * 8);
        const lo = v.getUint32(i * 8 + 4);
        const off = (hi & OFFSET_HI) * 0x100000000 + (lo & OFFSET_LO);
        if (off === 0) continue;
        if (i >= needL1) continue; // entries past the disk's end are never used
        if ((lo & 0x1ff) !== 0 || off % C !== 0) throw bad(`L1 entry ${i} (${hex(off)}) is not cluster-aligned`);
        if (!inFile(off, C)) throw bad(`L1 entry ${i} points at ${hex(off)}, outside the ${this._fileSize}-byte file`);
        this._claim(off / C, 1, `L2 table ${i}`, bad);
        this._l1[i] = off;
      }
    }
    this._reftableOffset = h.refcountTableOffset;
    this._reftableClusters = h.refcountTableClusters;
    this._reftable = this._loadReftable(bad);
    this._nextFree = Math.ceil(this._fileSize / C);
    this._checkMappings();
  }

  /**
   * Read every L2 table once and check each mapping: inside the file, not at
   * metadata, not shared by two guest clusters, and counted in the refcounts.
   * This catches a flipped bit in a table before the guest reads through it
   * (the cost: one read of each L2 table at open, a bit per host cluster).
   */
  private _checkMappings(): void {
    const C = this.clusterSize;
    const seen = new Uint8Array(Math.ceil(Math.ceil(this._fileSize / C) / 8) + 1);
    const m: Mapping = { kind: 0, host: 0, copied: false, compressedBytes: 0 };
    for (let l1i = 0; l1i < this._l1.length; l1i++) {
      const off = this._l1[l1i];
      if (!off) continue;
      if (this.refcount(off / C) === 0) throw this._bad(`L2 table ${l1i} at ${hex(off)} is in use but its refcount is 0`);
      const t = this._cacheGet(this._l2Cache, off);
      const v = new DataView(t.buffer, t.byteOffset, t.length);
      const firstGc = l1i * this._l2Entries;
      const guestClusters = Math.ceil(this.sizeBytes / C);
      for (let j = 0; j < this._l2Entries; j++) {
        const hi = v.getUint32(j * 8);
        const lo = v.getUint32(j * 8 + 4);
        if (hi === 0 && lo === 0) continue;
        const gc = firstGc + j;
        if (gc >= guestClusters) continue; // past the disk's end: never read
        this._decode(gc, hi, lo, m);
        if (m.kind === COMPRESSED_KIND) {
          for (let c = Math.floor(m.host / C); c <= Math.floor((m.host + m.compressedBytes - 1) / C); c++) {
            if (this.refcount(c) === 0) throw this._bad(`the compressed cluster for guest offset ${hex(gc * C)} lies in a cluster whose refcount is 0`);
          }
        } else if (m.host !== 0) {
          const c = m.host / C;
          if (seen[c >> 3] & (1 << (c & 7))) throw this._bad(`host cluster ${hex(m.host)} is mapped by two guest clusters (one at ${hex(gc * C)})`);
          seen[c >> 3] |= 1 << (c & 7);
          if (this.refcount(c) === 0) throw this._bad(`the cluster for guest offset ${hex(gc * C)} (${hex(m.host)}) is in use but its refcount is 0`);
        }
      }
    }
  }

  /**
   * Open a qcow2 image over `file` (whose header has already been read or not).
   * Throws StorageError when the image is damaged, uses features tsvm does not
   * support, or cannot be written when writing was asked for.
   */
  static open(file: StorageFile, opts: Qcow2Options, header?: Qcow2Header): Qcow2Image {
    const name = file.name;
    const size = file.size();
    let h = header;
    if (!h) {
      const head = new Uint8Array(Math.min(size, 1 << 21));
      readFull(file, 0, head);
      h = parseQcow2Header(head, size, name);
    }
    const writing = !opts.readOnly && !file.readOnly;
    const inc = Number(h.incompatible & 0xffn);
    if (writing && inc & INCOMPAT_CORRUPT) {
      throw new StorageError('BAD_IMAGE', `${name}: QEMU marked the image corrupt; repair it with qemu-img check -r all ${name}, or open it read-only`);
    }
    if (writing && inc & INCOMPAT_DIRTY) {
      throw new StorageError('UNSUPPORTED', `${name}: the image was not closed cleanly and uses lazy refcounts; repair it with qemu-img check -r all ${name}, or open it read-only`);
    }
    if (writing && h.nbSnapshots > 0) {
      throw new StorageError('UNSUPPORTED', `${name}: the image has ${h.nbSnapshots} internal snapshot(s); tsvm writes only qcow2 images without internal snapshots. Open it read-only (or with snapshot=on), or remove them with qemu-img snapshot -d`);
    }
    const img = new Qcow2Image(file, h, opts);
    if (writing && h.autoclear !== 0n) {
      // the spec: a writer that does not maintain these features must clear their bits
      const z = new Uint8Array(8);
      file.write(88, z);
      file.sync();
    }
    return img;
  }

  // ---- metadata bookkeeping -------------------------------------------------------------

  private _claim(first: number, count: number, what: string, bad: (m: string) => StorageError): void {
    for (let c = first; c < first + count; c++) {
      const other = this._meta.get(c);
      if (other !== undefined) throw bad(`${what} (at ${hex(c * this.clusterSize)}) overlaps ${other}`);
      this._meta.set(c, what);
    }
  }

  private _loadReftable(bad: (m: string) => StorageError): Float64Array {
    const C = this.clusterSize;
    const n = (this._reftableClusters * C) / 8;
    const raw = new Uint8Array(n * 8);
    this._readMeta(this._reftableOffset, raw);
    const v = new DataView(raw.buffer);
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const hi = v.getUint32(i * 8);
      const lo = v.getUint32(i * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      if (hi >= 0x200000) throw bad(`refcount table entry ${i} is beyond any possible file size`);
      const off = hi * 0x100000000 + lo;
      if (off % C !== 0) throw bad(`refcount table entry ${i} (${hex(off)}) is not cluster-aligned`);
      if (off + C > this._fileSize) throw bad(`refcount table entry ${i} points at ${hex(off)}, outside the ${this._fileSize}-byte file`);
      this._claim(off / C, 1, `refcount block ${i}`, bad);
      t[i] = off;
    }
    return t;
  }

  private _readMeta(pos: number, dst: Uint8Array): void {
    const n = readFull(this.file, pos, dst);
    if (n < dst.length) throw new StorageError('BAD_IMAGE', `${this.file.name}: metadata at ${hex(pos)} runs past the end of the file`);
  }

  private _bad(msg: string): StorageError {
    return new StorageError('BAD_IMAGE', `${this.file.name}: ${msg}; the image is damaged (qemu-img check ${this.file.name} may say more)`);
  }

  /** A table from the cache, read on a miss. */
  private _cacheGet(cache: Map<number, Uint8Array>, off: number): Uint8Array {
    let t = cache.get(off);
    if (t) return t;
    this._makeRoom(cache);
    t = new Uint8Array(this.clusterSize);
    this._readMeta(off, t);
    cache.set(off, t);
    return t;
  }

  /** Evict the oldest table when the cache is full; a dirty L2 table is committed first. */
  private _makeRoom(cache: Map<number, Uint8Array>): void {
    if (cache.size < MAX_CACHED_TABLES) return;
    const victim = cache.keys().next().value as number;
    if (cache === this._l2Cache && this._dirtyL2.has(victim)) this._commit();
    cache.delete(victim);
  }

  // ---- lookups -----------------------------------------------------------------------------

  /** Decode the L2 entry of guest cluster gc. */
  private _lookup(gc: number, out: Mapping): void {
    out.kind = UNALLOCATED;
    out.host = 0;
    out.copied = false;
    out.compressedBytes = 0;
    const l1i = Math.floor(gc / this._l2Entries);
    const l2off = this._l1[l1i];
    if (!l2off) return;
    const t = this._cacheGet(this._l2Cache, l2off);
    const at = (gc & (this._l2Entries - 1)) * 8;
    const hi = ((t[at] << 24) | (t[at + 1] << 16) | (t[at + 2] << 8) | t[at + 3]) >>> 0;
    const lo = ((t[at + 4] << 24) | (t[at + 5] << 16) | (t[at + 6] << 8) | t[at + 7]) >>> 0;
    this._decode(gc, hi, lo, out);
  }

  private _decode(gc: number, hi: number, lo: number, out: Mapping): void {
    const C = this.clusterSize;
    out.copied = (hi & COPIED) !== 0;
    if (hi & COMPRESSED) {
      const xHi = 62 - (this._cb - 8) - 32; // offset bits in the high word
      const host = (hi & ((1 << xHi) - 1)) * 0x100000000 + lo;
      const extra = (hi & 0x3fffffff) >>> xHi;
      out.kind = COMPRESSED_KIND;
      out.host = host;
      out.compressedBytes = (extra + 1) * 512 - (host & 511);
      if (host < C || host >= this._fileSize) throw this._bad(`the compressed cluster for guest offset ${hex(gc * C)} points at ${hex(host)}, outside the file's data area`);
      for (const c of [Math.floor(host / C), Math.floor((host + out.compressedBytes - 1) / C)]) {
        const m = this._meta.get(c);
        if (m !== undefined) throw this._bad(`the compressed cluster for guest offset ${hex(gc * C)} overlaps ${m}`);
      }
      return;
    }
    if (hi & L2_RESERVED_HI || lo & L2_RESERVED_LO) throw this._bad(`the L2 entry for guest offset ${hex(gc * C)} has reserved bits set`);
    const host = (hi & OFFSET_HI) * 0x100000000 + (lo & OFFSET_LO);
    if (lo & 1 && this.header.version >= 3) {
      if (host !== 0) this._checkData(gc, host);
      out.kind = ZERO;
      out.host = host;
      return;
    }
    if (lo & 1) throw this._bad(`the L2 entry for guest offset ${hex(gc * C)} uses the zero flag, which version 2 images do not have`);
    if (host === 0) {
      if (out.copied) throw this._bad(`the L2 entry for guest offset ${hex(gc * C)} maps host offset 0 (the header)`);
      return;
    }
    this._checkData(gc, host);
    out.kind = NORMAL;
    out.host = host;
  }

  /** A data cluster must be aligned, inside the file and not one of the image's tables. */
  private _checkData(gc: number, host: number): void {
    const C = this.clusterSize;
    if (host % C !== 0) throw this._bad(`the L2 entry for guest offset ${hex(gc * C)} (${hex(host)}) is not cluster-aligned`);
    // the part of the cluster the guest sees must be in the file (a truncated file is refused, not read as zeros)
    if (host + Math.min(C, this.sizeBytes - gc * C) > this._fileSize) {
      throw this._bad(`the cluster for guest offset ${hex(gc * C)} at ${hex(host)} lies past the end of the ${this._fileSize}-byte file (was the file truncated?)`);
    }
    const m = this._meta.get(host / C);
    if (m !== undefined) throw this._bad(`the L2 entry for guest offset ${hex(gc * C)} points at ${m}`);
  }

  /** The decompressed contents of a compressed cluster (a shared buffer, valid until the next call). */
  private _decompress(m: Mapping, gc: number): Uint8Array {
    if (this._zcCluster === m.host) return this._zcBuf;
    const inflate = this._opts.inflateRaw;
    if (!inflate) throw new StorageError('UNSUPPORTED', `${this.file.name}: the image has compressed clusters and this host has no deflate decompressor`);
    const len = Math.min(m.compressedBytes, this._fileSize - m.host);
    const src = new Uint8Array(len);
    readFull(this.file, m.host, src);
    this._zcCluster = -1;
    let n: number;
    try {
      n = inflate(src, this._zcBuf);
    } catch (e) {
      throw this._bad(`the compressed cluster for guest offset ${hex(gc * this.clusterSize)} does not decompress (${(e as Error).message})`);
    }
    if (n !== this.clusterSize) throw this._bad(`the compressed cluster for guest offset ${hex(gc * this.clusterSize)} decompresses to ${n} bytes, not a whole cluster`);
    this._zcCluster = m.host;
    return this._zcBuf;
  }

  // ---- reads ---------------------------------------------------------------------------------

  read(offset: number, dst: Uint8Array): void {
    this.readv(offset, [dst]);
  }

  /**
   * Read into a list of buffers taken as one: each run of standard clusters
   * contiguous in the file is one readv of the file, however many buffers it
   * spans; zero, compressed and unallocated clusters are filled in between.
   */
  readv(offset: number, dsts: IoVec): void {
    if (this._closed) throw new StorageError('IO', `${this.file.name} is closed`);
    const C = this.clusterSize;
    const total = iovLength(dsts);
    const end = Math.min(offset + total, this.sizeBytes);
    const cur = new IovCursor(dsts);
    const m: Mapping = { kind: 0, host: 0, copied: false, compressedBytes: 0 };
    let pos = offset;
    let runHost = -1;
    let runLen = 0;
    let run: Uint8Array[] = [];
    const flushRun = () => {
      if (runLen > 0) readFullv(this.file, runHost, run);
      run = [];
      runLen = 0;
    };
    while (pos < end) {
      const gc = Math.floor(pos / C);
      const within = pos - gc * C;
      const n = Math.min(C - within, end - pos);
      this._lookup(gc, m);
      if (m.kind === NORMAL) {
        const h = m.host + within;
        if (runLen === 0 || runHost + runLen !== h) {
          flushRun();
          runHost = h;
        }
        cur.take(n, run);
        runLen += n;
      } else {
        flushRun();
        const parts = cur.take(n);
        if (m.kind === ZERO) iovFill(parts, 0);
        else if (m.kind === COMPRESSED_KIND) iovCopyIn(parts, this._decompress(m, gc).subarray(within, within + n));
        else if (this._opts.backing) this._opts.backing.readv(pos, parts);
        else iovFill(parts, 0);
      }
      pos += n;
    }
    flushRun();
    iovFill(cur.rest(), 0); // past the end of the disk
  }

  // ---- refcounts -----------------------------------------------------------------------------

  private _getRef(block: Uint8Array, i: number): number {
    const bits = this._refBits;
    if (bits === 16) return (block[i * 2] << 8) | block[i * 2 + 1];
    if (bits < 8) {
      const bit = i * bits;
      return (block[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
    }
    const bytes = bits / 8;
    let v = 0;
    for (let k = 0; k < bytes; k++) v = v * 256 + block[i * bytes + k];
    return v;
  }

  private _setRef(block: Uint8Array, i: number, value: number): void {
    const bits = this._refBits;
    if (bits < 8) {
      const bit = i * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      block[bit >> 3] = (block[bit >> 3] & ~mask) | ((value << (bit & 7)) & mask);
      return;
    }
    const bytes = bits / 8;
    let v = value;
    for (let k = bytes - 1; k >= 0; k--) {
      block[i * bytes + k] = v % 256;
      v = Math.floor(v / 256);
    }
  }

  /** Byte range of entry i within a refcount block (for writing back only what changed). */
  private _refBytes(i: number): [number, number] {
    const bits = this._refBits;
    const start = Math.floor((i * bits) / 8);
    return [start, Math.floor(((i + 1) * bits - 1) / 8) + 1];
  }

  /** The refcount of host cluster c (0 where no block covers it). */
  refcount(c: number): number {
    const bi = Math.floor(c / this._refPerBlock);
    if (bi >= this._reftable.length) return 0;
    const off = this._reftable[bi];
    if (!off) return 0;
    return this._getRef(this._cacheGet(this._refCache, off), c - bi * this._refPerBlock);
  }

  /**
   * Add delta to the refcounts of clusters [first, first+count), writing each
   * changed refcount block range back. Blocks must exist (see _ensureBlocks).
   */
  private _changeRefs(first: number, count: number, delta: number): void {
    let c = first;
    while (c < first + count) {
      const bi = Math.floor(c / this._refPerBlock);
      const off = this._reftable[bi];
      if (!off) throw this._bad(`cluster ${hex(c * this.clusterSize)} is in use but has no refcount block`);
      const block = this._cacheGet(this._refCache, off);
      const lastInBlock = Math.min(first + count, (bi + 1) * this._refPerBlock);
      let lo = Infinity;
      let hi = 0;
      for (; c < lastInBlock; c++) {
        const i = c - bi * this._refPerBlock;
        const v = this._getRef(block, i) + delta;
        if (v < 0) throw this._bad(`the refcount of cluster ${hex(c * this.clusterSize)} would drop below zero`);
        if (v > this._refMax) throw new StorageError('UNSUPPORTED', `${this.file.name}: the refcount of cluster ${hex(c * this.clusterSize)} would overflow`);
        this._setRef(block, i, v);
        const [s, e] = this._refBytes(i);
        if (s < lo) lo = s;
        if (e > hi) hi = e;
      }
      this.file.write(off + lo, block.subarray(lo, hi));
    }
  }

  /**
   * Find a run of `count` free clusters at or after _nextFree whose refcount
   * blocks exist. A missing block is created at the run's first cluster, which
   * pushes the run on by one: the block is counted in itself when it describes
   * its own cluster, else in the existing block of that cluster's range.
   */
  private _findRun(count: number): number {
    let start = this._nextFree;
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new StorageError('IO', `${this.file.name}: could not find ${count} free clusters`);
      let busy = -1;
      for (let c = start; c < start + count; c++) {
        if (this._meta.has(c) || this.refcount(c) !== 0) busy = c;
      }
      if (busy >= 0) {
        start = busy + 1;
        continue;
      }
      const ppb = this._refPerBlock;
      let missing = -1;
      for (let bi = Math.floor(start / ppb); bi <= Math.floor((start + count - 1) / ppb); bi++) {
        if (bi >= this._reftable.length || !this._reftable[bi]) {
          missing = bi;
          break;
        }
      }
      if (missing < 0) return start;
      const need = Math.floor((start + count) / ppb) + 1;
      if (need > this._reftable.length) {
        this._growReftable(need);
        start = Math.max(start, this._nextFree);
        continue;
      }
      // the block for start's own range first (it counts itself), then the others
      const own = Math.floor(start / ppb);
      this._newRefBlock(this._reftable[own] ? missing : own, start);
      start++;
      this._nextFree = Math.max(this._nextFree, start);
    }
  }

  /** Create the refcount block for range bi at cluster `at` (free, and its own range has a block or is bi). */
  private _newRefBlock(bi: number, at: number): void {
    const C = this.clusterSize;
    const block = new Uint8Array(C);
    const self = Math.floor(at / this._refPerBlock) === bi;
    if (self) this._setRef(block, at - bi * this._refPerBlock, 1);
    this.file.write(at * C, block); // unreferenced until the table entry below
    this._grow(at + 1);
    if (!self) this._changeRefs(at, 1, 1);
    this._barrier();
    this._writeReftableEntry(bi, at * C);
    this._reftable[bi] = at * C;
    this._refCache.set(at * C, block);
    this._meta.set(at, `refcount block ${bi}`);
  }

  private _writeReftableEntry(bi: number, off: number): void {
    const e = new Uint8Array(8);
    const v = new DataView(e.buffer);
    v.setUint32(0, Math.floor(off / 0x100000000));
    v.setUint32(4, off >>> 0);
    this.file.write(this._reftableOffset + bi * 8, e);
  }

  /**
   * Move the refcount table to a larger one at the end of the file. The new
   * table and any refcount blocks it needs are written first, the header is
   * switched to it with one write, and only then the old table's clusters are
   * freed: a crash leaves either table in use and the other one leaked.
   */
  private _growReftable(minEntries: number): void {
    const C = this.clusterSize;
    const perCluster = C / 8;
    let clusters = Math.max(this._reftableClusters * 2, Math.ceil(minEntries / perCluster) + 1);
    for (;;) {
      if (clusters * C > MAX_REFTABLE_BYTES) throw new StorageError('UNSUPPORTED', `${this.file.name}: the image needs a refcount table larger than 8 MiB; use a larger cluster size`);
      let tstart = this._nextFree;
      while (this._runBusy(tstart, clusters)) tstart++;
      const entries = new Float64Array(clusters * perCluster);
      entries.set(this._reftable);
      // blocks for the new table's clusters (and for themselves) go right after the table
      let end = tstart + clusters;
      const newBlocks: number[] = [];
      for (let changed = true; changed; ) {
        changed = false;
        for (let c = tstart; c < end; c++) {
          const bi = Math.floor(c / this._refPerBlock);
          if (bi >= entries.length) break;
          if (!entries[bi]) {
            entries[bi] = end * C;
            newBlocks.push(bi);
            end++;
            changed = true;
          }
        }
      }
      if (Math.floor((end - 1) / this._refPerBlock) >= entries.length) {
        clusters *= 2;
        continue;
      }
      // refcount the new clusters: in the new blocks (in memory) or in existing ones
      const fresh = new Map<number, Uint8Array>();
      for (const bi of newBlocks) fresh.set(bi, new Uint8Array(C));
      const touchedOld: number[] = [];
      for (let c = tstart; c < end; c++) {
        const bi = Math.floor(c / this._refPerBlock);
        const nb = fresh.get(bi);
        if (nb) this._setRef(nb, c - bi * this._refPerBlock, 1);
        else touchedOld.push(c);
      }
      for (const [bi, nb] of fresh) this.file.write(entries[bi], nb);
      const tbytes = new Uint8Array(clusters * C);
      const tv = new DataView(tbytes.buffer);
      for (let i = 0; i < entries.length; i++) {
        tv.setUint32(i * 8, Math.floor(entries[i] / 0x100000000));
        tv.setUint32(i * 8 + 4, entries[i] >>> 0);
      }
      this.file.write(tstart * C, tbytes);
      this._grow(end);
      for (const c of touchedOld) this._changeRefs(c, 1, 1);
      this._barrier();
      // switch the header: refcount_table_offset and refcount_table_clusters in one write
      const hd = new Uint8Array(12);
      const hv = new DataView(hd.buffer);
      hv.setUint32(0, Math.floor((tstart * C) / 0x100000000));
      hv.setUint32(4, (tstart * C) >>> 0);
      hv.setUint32(8, clusters);
      this.file.write(48, hd);
      this._barrier();
      const oldFirst = this._reftableOffset / C;
      const oldCount = this._reftableClusters;
      for (let c = oldFirst; c < oldFirst + oldCount; c++) this._meta.delete(c);
      this._reftableOffset = tstart * C;
      this._reftableClusters = clusters;
      this._reftable = entries;
      for (let c = tstart; c < tstart + clusters; c++) this._meta.set(c, 'the refcount table');
      for (const bi of newBlocks) {
        this._meta.set(entries[bi] / C, `refcount block ${bi}`);
        this._refCache.set(entries[bi], fresh.get(bi)!);
      }
      this._nextFree = end;
      this._changeRefs(oldFirst, oldCount, -1);
      return;
    }
  }

  private _runBusy(start: number, count: number): boolean {
    for (let c = start; c < start + count; c++) if (this._meta.has(c) || this.refcount(c) !== 0) return true;
    return false;
  }

  /** Allocate `count` contiguous clusters (refcount 1); returns the first cluster's offset. Its data must be written by the caller before anything references it. */
  private _allocate(count: number): number {
    const start = this._findRun(count);
    this._nextFree = start + count;
    return start * this.clusterSize;
  }

  private _grow(endCluster: number): void {
    const end = endCluster * this.clusterSize;
    if (end > this._fileSize) this._fileSize = end;
  }

  private _barrier(): void {
    if (this._barriers) this.file.sync();
  }

  // ---- writes --------------------------------------------------------------------------------

  write(offset: number, src: Uint8Array): void {
    this.writev(offset, [src]);
  }

  /**
   * Write a list of buffers taken as one. In-place clusters contiguous in the
   * file are one writev, and the fresh clusters of an allocating write one
   * writev at the end of the file, without copying the guest's buffers.
   */
  writev(offset: number, srcs: IoVec): void {
    if (this._closed) throw new StorageError('IO', `${this.file.name} is closed`);
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.file.name} is opened read-only`);
    const total = iovLength(srcs);
    if (offset < 0 || offset + total > this.sizeBytes) {
      throw new StorageError('IO', `${this.file.name}: write of ${total} bytes at ${offset} goes past the end of the ${this.sizeBytes}-byte disk`);
    }
    if (total === 0) return;
    const C = this.clusterSize;
    const v3 = this.header.version >= 3;

    // 1. classify each cluster the write touches
    const pieces: WritePiece[] = [];
    const cur = new IovCursor(srcs);
    for (let pos = offset; pos < offset + total; ) {
      const gc = Math.floor(pos / C);
      const within = pos - gc * C;
      const n = Math.min(C - within, offset + total - pos);
      const m: Mapping = { kind: 0, host: 0, copied: false, compressedBytes: 0 };
      this._lookup(gc, m);
      pieces.push({ gc, within, src: cur.take(n), len: n, map: m, hi: 0, lo: 0, fresh: null });
      pos += n;
    }

    let allocCount = 0;
    const frees: [number, number][] = []; // [first cluster, count] to drop a reference from after the L2 update
    for (const p of pieces) {
      const m = p.map;
      const whole = p.within === 0 && p.len === C;
      if (m.kind === NORMAL && m.copied) {
        if (whole && v3 && iovIsZero(p.src)) {
          // keep the cluster allocated, mark it as reading zeros: one L2 write instead of a cluster
          p.hi = Math.floor(m.host / 0x100000000) | COPIED;
          p.lo = (m.host >>> 0) | 1;
        }
        continue; // otherwise written in place below
      }
      if (whole && iovIsZero(p.src) && (v3 || (!this._opts.backing && m.kind === UNALLOCATED))) {
        if (m.kind === UNALLOCATED && !this._opts.backing) continue; // already reads as zeros
        if (m.kind === ZERO) continue;
        p.hi = 0;
        p.lo = 1; // zero cluster, nothing allocated
      } else {
        // a fresh cluster: the old contents (backing file, zeros, compressed data or a shared cluster) with the new bytes over them
        if (whole) p.fresh = p.src;
        else {
          const fresh = new Uint8Array(C);
          const base = p.gc * C;
          if (m.kind === COMPRESSED_KIND) fresh.set(this._decompress(m, p.gc));
          else if (m.kind === NORMAL) readFull(this.file, m.host, fresh);
          else if (m.kind === UNALLOCATED && this._opts.backing) this._opts.backing.read(base, fresh.subarray(0, Math.min(C, this.sizeBytes - base)));
          iovCopyOut(p.src, fresh, p.within);
          p.fresh = [fresh];
        }
        allocCount++;
      }
      if (m.kind === COMPRESSED_KIND) {
        const first = Math.floor(m.host / C);
        const last = Math.floor((m.host + m.compressedBytes - 1) / C);
        frees.push([first, last - first + 1]);
      } else if (m.kind === NORMAL) {
        frees.push([m.host / C, 1]);
      } else if (m.kind === ZERO && m.host !== 0) {
        // a preallocated zero cluster given new data: its old cluster is let go like any other
        frees.push([m.host / C, 1]);
      }
    }

    // 2. new L2 tables for L1 entries without one (allocated like data, linked into L1 last)
    const newTables = new Map<number, Uint8Array>(); // l1 index -> table contents
    for (const p of pieces) {
      if (!p.fresh && p.lo === 0 && p.hi === 0) continue;
      const l1i = Math.floor(p.gc / this._l2Entries);
      if (l1i >= this._l1.length) throw this._bad(`guest offset ${hex(p.gc * C)} is beyond the L1 table`);
      if (!this._l1[l1i] && !newTables.has(l1i)) newTables.set(l1i, new Uint8Array(C));
    }

    // 3. allocate: data clusters contiguous, then the new tables; write the data and the new tables
    //    (nothing references them yet), then their refcounts
    let dataStart = 0;
    if (allocCount > 0) dataStart = this._allocate(allocCount);
    const tableAt = new Map<number, number>();
    for (const l1i of newTables.keys()) tableAt.set(l1i, this._allocate(1));
    if (this._meta.has(dataStart / C) && allocCount > 0) throw new StorageError('IO', `${this.file.name}: internal error: allocated metadata`);

    // in-place writes to clusters this image owns, merged into runs
    this._writeInPlace(pieces);
    // fresh data clusters, one writev for the whole contiguous run
    if (allocCount > 0) {
      const bufs: Uint8Array[] = [];
      let k = 0;
      for (const p of pieces) {
        if (!p.fresh) continue;
        const host = dataStart + k * C;
        for (const f of p.fresh) bufs.push(f);
        p.hi = Math.floor(host / 0x100000000) | COPIED;
        p.lo = host >>> 0;
        k++;
      }
      writeAllv(this.file, dataStart, bufs);
      this._grow(dataStart / C + allocCount);
    }
    // the new L2 tables, filled with their entries
    for (const p of pieces) {
      const t = newTables.get(Math.floor(p.gc / this._l2Entries));
      if (t && (p.fresh || p.hi || p.lo)) setEntry(t, p.gc & (this._l2Entries - 1), p.hi, p.lo);
    }
    for (const [l1i, t] of newTables) {
      const at = tableAt.get(l1i)!;
      this.file.write(at, t);
      this._grow(at / C + 1);
    }
    // refcounts of everything just written, then a barrier: nothing may reference a cluster before its refcount is durable
    if (allocCount > 0) this._changeRefs(dataStart / C, allocCount, 1);
    for (const at of tableAt.values()) this._changeRefs(at / C, 1, 1);

    // 4. L2 updates in existing tables: in the cache now, on disk at the next commit
    for (const p of pieces) {
      if (!p.fresh && !p.hi && !p.lo) continue;
      const l1i = Math.floor(p.gc / this._l2Entries);
      if (newTables.has(l1i)) continue;
      const off = this._l1[l1i];
      setEntry(this._cacheGet(this._l2Cache, off), p.gc & (this._l2Entries - 1), p.hi, p.lo);
      this._dirtyL2.add(off);
    }

    // 5. the new tables: in use in memory at once, linked into the L1 table on disk at the next commit
    for (const [l1i, t] of newTables) {
      const at = tableAt.get(l1i)!;
      this._l1[l1i] = at;
      this._pendingL1.add(l1i);
      this._meta.set(at / C, `L2 table ${l1i}`);
      this._makeRoom(this._l2Cache);
      this._l2Cache.set(at, t);
    }

    // 6. references the L2 update removed are dropped after the commit has made it durable
    for (const f of frees) this._pendingFrees.push(f);
    if (frees.length > 0) this._zcCluster = -1;
    if (this._dirtyL2.size + this._pendingL1.size >= MAX_DIRTY_TABLES || this._pendingFrees.length >= MAX_PENDING_FREES) this._commit();
  }

  /**
   * Write the metadata updates kept in memory, in the order that keeps the
   * image consistent at every step (docs/storage.md, "Crash safety"):
   * barrier (data, refcounts and new tables durable), the changed L2 tables,
   * the L1 entries of new tables, barrier, then the refcount decrements of
   * clusters no longer referenced.
   */
  private _commit(): void {
    if (this._dirtyL2.size === 0 && this._pendingL1.size === 0 && this._pendingFrees.length === 0) return;
    this._barrier();
    for (const off of this._dirtyL2) {
      const t = this._l2Cache.get(off);
      if (t) this.file.write(off, t);
    }
    this._dirtyL2.clear();
    for (const l1i of this._pendingL1) {
      const at = this._l1[l1i];
      const e = new Uint8Array(8);
      setEntry(e, 0, Math.floor(at / 0x100000000) | COPIED, at >>> 0);
      this.file.write(this.header.l1TableOffset + l1i * 8, e);
    }
    this._pendingL1.clear();
    if (this._pendingFrees.length > 0) {
      this._barrier();
      const frees = this._pendingFrees;
      this._pendingFrees = [];
      for (const [first, count] of frees) this._changeRefs(first, count, -1);
    }
  }

  private _writeInPlace(pieces: WritePiece[]): void {
    let runHost = -1;
    let runLen = 0;
    let run: Uint8Array[] = [];
    const flush = () => {
      if (runLen > 0) writeAllv(this.file, runHost, run);
      run = [];
      runLen = 0;
    };
    for (const p of pieces) {
      if (p.map.kind !== NORMAL || !p.map.copied || p.fresh || p.lo & 1) {
        flush();
        continue;
      }
      const h = p.map.host + p.within;
      if (runLen > 0 && runHost + runLen !== h) flush();
      if (runLen === 0) runHost = h;
      for (const b of p.src) run.push(b);
      runLen += p.len;
    }
    flush();
  }

  /** Commit the metadata kept in memory and make everything durable (the guest's FLUSH CACHE). */
  flush(): void {
    if (this.readOnly || this._closed) return;
    this._commit();
    this.file.sync();
  }

  close(): void {
    if (this._closed) return;
    if (!this.readOnly) {
      this._commit();
      this.file.sync();
    }
    this._closed = true;
    this._opts.backing?.close();
    this.file.close();
  }
}

function setEntry(t: Uint8Array, i: number, hi: number, lo: number): void {
  const at = i * 8;
  t[at] = hi >>> 24;
  t[at + 1] = (hi >>> 16) & 0xff;
  t[at + 2] = (hi >>> 8) & 0xff;
  t[at + 3] = hi & 0xff;
  t[at + 4] = lo >>> 24;
  t[at + 5] = (lo >>> 16) & 0xff;
  t[at + 6] = (lo >>> 8) & 0xff;
  t[at + 7] = lo & 0xff;
}

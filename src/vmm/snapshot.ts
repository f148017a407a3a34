/**
 * Snapshot files (docs/snapshot-format.md): a whole machine in one file.
 *
 *   "TSVMSNAP" | u32 format version | section* | "end" section
 *   section = u16 name length | name | u8 flags | u32 stored length |
 *             u32 raw length | u32 CRC-32 of the stored bytes | stored bytes
 *
 * Sections, in order: `header` (JSON: the machine spec, the state version,
 * RAM size, every device's schema name and version, name, description,
 * time, a text screenshot), `cpu`, `fpu`, `machine` (clock, A20, stop
 * reason), one `dev/<id>` per device (state values in the codec of
 * state/codec.ts; typed arrays of 64 KiB or more, VGA memory above all, are
 * taken out into `arr` sections of their own, page streams like RAM), then
 * `ram`: a page stream (a bitmap of the pages present, then those pages in
 * 128 KiB batches, each deflated at level 1 or stored raw; zero pages are absent). A RAM stream is `full`
 * (absent pages are zero) or `delta` (absent pages are unchanged from the
 * state the stream is applied to: incremental snapshots and migration rounds
 * send only dirty pages).
 *
 * Reading validates everything (magic, version, every section's length and
 * checksum, the header, the spec against the running machine's, every
 * device state against its schema, the RAM stream's size) before the machine
 * changes at all.
 */
import { readFileSync, statSync } from 'node:fs';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Machine, MachineState } from '../board/machine.js';
import { ByteReader, ByteWriter, decodeValue, encodeValue, typedArrayOf, typedArrayTag } from '../state/codec.js';
import { StateError } from '../state/state.js';
import { SnapshotError } from './errors.js';
import { writeFileAtomic } from './atomic.js';
import { specMismatch, validateSpec, VmConfigError, type MachineSpec } from './spec.js';

export { writeFileAtomic };

export const SNAPSHOT_MAGIC = 'TSVMSNAP';
/** The file format version this tsvm writes and the only one it reads. */
export const SNAPSHOT_VERSION = 2;
export const PAGE_BYTES = 4096;
/** Section flag: the stored bytes are raw-deflated. */
const FLAG_DEFLATE = 1;
/** Sections larger than this are deflated (VGA memory, mostly). */
const DEFLATE_ABOVE = 4096;
/** Fast compression: saving should take well under a second for a few hundred MiB. */
const DEFLATE_LEVEL = 1;
/** Largest section accepted (RAM is at most 3 GiB, stored deflated; a JS array holds less). */
const MAX_SECTION = 2 ** 31 - 1;

export const enum RamStreamKind {
  /** Absent pages are zero. */
  FULL = 0,
  /** Absent pages keep what the target already holds. */
  DELTA = 1,
}

/** What a snapshot file says about itself. */
export interface SnapshotHeader {
  spec: MachineSpec;
  machineStateVersion: number;
  ramBytes: number;
  devices: { id: string; schema: string; version: number }[];
  name: string;
  description: string;
  /** ISO 8601 time of the save. */
  createdAt: string;
  /** Guest time at the save, seconds. */
  guestSeconds: number;
  /** The text screen at the save (rows), when the display was in text mode: the snapshot's thumbnail. */
  screen: string[] | null;
}

/** A file that cannot be used, with what is wrong with it (defined in errors.ts, which front ends load alone). */
export { SnapshotError };

const zeroPage = Buffer.alloc(PAGE_BYTES);
/** Pages checked for zero at once first: most of a guest's RAM is long zero runs. */
const ZERO_GROUP = 16;
const zeroGroup = Buffer.alloc(PAGE_BYTES * ZERO_GROUP);
/**
 * Present pages are compressed in batches of this many bytes (one zlib call
 * each). Small enough that the way back to the last snapshot (a hundred or
 * so dirty pages scattered over all of RAM) inflates a fraction of the
 * stream, large enough that a full load stays a few hundred calls.
 */
const CHUNK_BYTES = 128 << 10;
/** encodeRamParts() reports its progress every this many pages (1 MiB): a few hundred calls for a guest's RAM. */
const PROGRESS_PAGES = 256;
/** A batch is stored raw when deflate would not save at least an eighth of it. */
const STORE_IF_ABOVE = 7 / 8;
const enum ChunkMethod {
  STORED = 0,
  DEFLATE = 1,
}

/** A page stream as the parts of its bytes (written out without joining them). */
export interface StreamParts {
  parts: Uint8Array[];
  length: number;
}

/**
 * Encode RAM (or any large byte array) as a page stream. `dirty` (one bit per
 * page, LSB first) limits it to those pages and makes it a delta; otherwise
 * it is full and zero pages are left out. Present pages go out in batches of
 * CHUNK_BYTES, each deflated at level 1 or stored raw when that gains little;
 * a batch of pages contiguous in RAM is compressed from RAM itself, otherwise
 * it is gathered into one reused scratch buffer. `progress` is told the
 * bytes scanned so far, every MiB and at the end.
 */
export function encodeRamParts(ram: Uint8Array, dirty?: Uint8Array, progress?: (scannedBytes: number) => void): StreamParts {
  const pages = Math.ceil(ram.length / PAGE_BYTES);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const buf = Buffer.from(ram.buffer, ram.byteOffset, ram.byteLength);
  const head = new ByteWriter();
  head.u8(dirty ? RamStreamKind.DELTA : RamStreamKind.FULL);
  head.u32(PAGE_BYTES);
  head.u32(ram.length);
  const parts: Uint8Array[] = [];
  let length = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    length += b.length;
  };
  let scratch: Buffer | null = null;
  // the batch being gathered: runs [start, end) of RAM bytes
  let runs: number[] = [];
  let batch = 0;
  const flush = () => {
    if (batch === 0) return;
    let input: Buffer;
    let fromScratch = false;
    if (runs.length === 2) input = buf.subarray(runs[0], runs[1]);
    else {
      scratch ??= Buffer.allocUnsafe(CHUNK_BYTES);
      let at = 0;
      for (let i = 0; i < runs.length; i += 2) at += buf.copy(scratch, at, runs[i], runs[i + 1]);
      input = scratch.subarray(0, at);
      fromScratch = true;
    }
    const packed = deflateRawSync(input, { level: DEFLATE_LEVEL, chunkSize: Math.max(64, input.length + (input.length >> 6) + 64) });
    const ch = Buffer.allocUnsafe(9);
    let data: Uint8Array;
    if (packed.length >= input.length * STORE_IF_ABOVE) {
      ch[0] = ChunkMethod.STORED;
      data = input;
      if (fromScratch) scratch = null; // the batch keeps this buffer
    } else {
      ch[0] = ChunkMethod.DEFLATE;
      data = packed;
    }
    ch.writeUInt32LE(input.length, 1);
    ch.writeUInt32LE(data.length, 5);
    push(ch);
    push(data);
    runs = [];
    batch = 0;
  };
  const add = (start: number, end: number) => {
    while (start < end) {
      const take = Math.min(end - start, CHUNK_BYTES - batch);
      if (runs.length && runs[runs.length - 1] === start) runs[runs.length - 1] = start + take;
      else runs.push(start, start + take);
      batch += take;
      start += take;
      if (batch === CHUNK_BYTES) flush();
    }
  };
  for (let p = 0; p < pages; p++) {
    if (progress && (p & (PROGRESS_PAGES - 1)) === 0 && p > 0) progress(p * PAGE_BYTES);
    if (dirty) {
      if (!(dirty[p >> 3] & (1 << (p & 7)))) continue;
    } else {
      if ((p & (ZERO_GROUP - 1)) === 0 && (p + ZERO_GROUP) * PAGE_BYTES <= ram.length && buf.subarray(p * PAGE_BYTES, (p + ZERO_GROUP) * PAGE_BYTES).equals(zeroGroup)) {
        p += ZERO_GROUP - 1;
        continue;
      }
      const end = (p + 1) * PAGE_BYTES;
      if (end <= ram.length && buf.subarray(p * PAGE_BYTES, end).equals(zeroPage)) continue;
    }
    bitmap[p >> 3] |= 1 << (p & 7);
    add(p * PAGE_BYTES, Math.min((p + 1) * PAGE_BYTES, ram.length));
  }
  flush();
  progress?.(ram.length);
  head.bytes(bitmap);
  const h = head.view();
  parts.unshift(h);
  length += h.length;
  return { parts, length };
}

/** encodeRamParts() as one array. */
export function encodeRam(ram: Uint8Array, dirty?: Uint8Array): Uint8Array {
  const { parts, length } = encodeRamParts(ram, dirty);
  return joinParts(parts, length);
}

function joinParts(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A checked RAM stream, ready to be applied without failing. */
export interface DecodedRam {
  kind: RamStreamKind;
  ramBytes: number;
  bitmap: Uint8Array;
  /** The present pages, in order, as the stream's batches (stored batches are views of the file's bytes). */
  chunks: Uint8Array[];
  /** Each batch's length (decodeRam with `want`: chunks of batches holding no wanted page are left empty). */
  chunkLens: number[];
  /** How many bytes of pages the stream holds. */
  presentBytes: number;
}

/** Largest batch accepted: a hostile file cannot make one inflate ask for much memory. */
const MAX_CHUNK = 64 << 20;

/**
 * Check and inflate a RAM stream (does not touch any machine). With `want`
 * (a page bitmap), only the batches holding a wanted present page are
 * inflated; the others are checked for their lengths (their bytes passed the
 * section's CRC) and left empty.
 */
export function decodeRam(b: Uint8Array, what = 'the RAM stream', want?: Uint8Array): DecodedRam {
  const r = new ByteReader(b, `snapshot: ${what}`);
  const kind = r.u8();
  if (kind !== RamStreamKind.FULL && kind !== RamStreamKind.DELTA) throw new SnapshotError(`${what} is of unknown kind ${kind}`);
  const pageBytes = r.u32();
  if (pageBytes !== PAGE_BYTES) throw new SnapshotError(`${what} has ${pageBytes}-byte pages; tsvm reads ${PAGE_BYTES}`);
  const ramBytes = r.u32();
  const pages = Math.ceil(ramBytes / PAGE_BYTES);
  const bitmap = r.bytes(Math.ceil(pages / 8));
  let count = 0;
  let lastPresent = -1;
  for (let p = 0; p < pages; p++) {
    if (bitmap[p >> 3] & (1 << (p & 7))) {
      count++;
      lastPresent = p;
    }
  }
  for (let p = pages; p < bitmap.length * 8; p++) if (bitmap[p >> 3] & (1 << (p & 7))) throw new SnapshotError(`${what} marks pages beyond its size`);
  const expect = count * PAGE_BYTES - (lastPresent === pages - 1 && ramBytes % PAGE_BYTES ? PAGE_BYTES - (ramBytes % PAGE_BYTES) : 0);
  const chunks: Uint8Array[] = [];
  const chunkLens: number[] = [];
  // the wanted present pages, by their rank among the present pages
  let wanted: number[] | null = null;
  if (want) {
    wanted = [];
    for (let p = 0, rank = 0; p < pages; p++) {
      if (!(bitmap[p >> 3] & (1 << (p & 7)))) continue;
      if (want[p >> 3] & (1 << (p & 7))) wanted.push(rank);
      rank++;
    }
  }
  let wi = 0;
  let got = 0;
  while (r.left > 0) {
    const method = r.u8();
    const rawLen = r.u32();
    const storedLen = r.u32();
    if (rawLen === 0 || rawLen > MAX_CHUNK || got + rawLen > expect) throw new SnapshotError(`${what} holds more bytes of pages than its bitmap says (${expect})`);
    if (storedLen > r.left) throw new SnapshotError(`${what} is truncated: a batch needs ${storedLen} bytes, ${r.left} are left`);
    const stored = r.bytes(storedLen);
    chunkLens.push(rawLen);
    if (wanted) {
      // ranks of the pages this batch holds: [got / page, (got + rawLen) / page)
      while (wi < wanted.length && wanted[wi] * PAGE_BYTES + PAGE_BYTES <= got) wi++;
      if (!(wi < wanted.length && wanted[wi] * PAGE_BYTES < got + rawLen) && (method === ChunkMethod.STORED || method === ChunkMethod.DEFLATE)) {
        if (method === ChunkMethod.STORED && storedLen !== rawLen) throw new SnapshotError(`${what}: a stored batch of ${rawLen} bytes has ${storedLen}`);
        chunks.push(new Uint8Array(0));
        got += rawLen;
        continue;
      }
    }
    if (method === ChunkMethod.STORED) {
      if (storedLen !== rawLen) throw new SnapshotError(`${what}: a stored batch of ${rawLen} bytes has ${storedLen}`);
      chunks.push(stored);
    } else if (method === ChunkMethod.DEFLATE) {
      let data: Buffer;
      try {
        data = inflateRawSync(stored, { maxOutputLength: rawLen, chunkSize: Math.max(64, rawLen) });
      } catch (e) {
        throw new SnapshotError(`${what} does not decompress: ${(e as Error).message}`);
      }
      if (data.length !== rawLen) throw new SnapshotError(`${what}: a batch inflates to ${data.length} bytes, its size says ${rawLen}`);
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.length));
    } else throw new SnapshotError(`${what}: a batch has unknown method ${method}`);
    got += rawLen;
  }
  if (got !== expect) throw new SnapshotError(`${what} holds ${got} bytes of pages; its bitmap says ${expect}`);
  return { kind, ramBytes, bitmap, chunks, chunkLens, presentBytes: got };
}

/** Write only the pages `want` marks from a stream decoded with that `want` (cannot fail): present ones from their batches, absent ones zeroed (full) or left (delta). */
export function applyRamPages(d: DecodedRam, ram: Uint8Array, want: Uint8Array): void {
  const pages = Math.ceil(d.ramBytes / PAGE_BYTES);
  let rank = 0;
  let ci = 0;
  let cstart = 0; // stream offset of batch ci
  for (let p = 0; p < pages; p++) {
    const present = (d.bitmap[p >> 3] & (1 << (p & 7))) !== 0;
    if (want[p >> 3] & (1 << (p & 7))) {
      const at = p * PAGE_BYTES;
      const end = Math.min(at + PAGE_BYTES, d.ramBytes);
      if (present) {
        // the page's bytes may span the end of one batch and the start of the next
        let off = rank * PAGE_BYTES;
        for (let dst = at; dst < end; ) {
          while (off >= cstart + d.chunkLens[ci]) cstart += d.chunkLens[ci++];
          const c = d.chunks[ci];
          const n = Math.min(end - dst, cstart + d.chunkLens[ci] - off);
          ram.set(c.subarray(off - cstart, off - cstart + n), dst);
          dst += n;
          off += n;
        }
      } else if (d.kind === RamStreamKind.FULL) ram.fill(0, at, end);
    }
    if (present) rank++;
  }
}

/**
 * What each machine's RAM last equalled: the snapshot saved from it or
 * loaded into it, by identity, and the dirty-page mark taken then. Loading
 * that snapshot again (savevm, run, loadvm: the usual way back) then needs
 * only the pages written since, which dirty-page tracking knows.
 */
const ramBase = new WeakMap<Machine, { id: string; marks: number }>();

/** A snapshot's RAM identity: its creation time and the CRC-32 and length of its RAM stream (the section's checksum, checked when the file was parsed). */
function ramIdentity(createdAt: string, ramLength: number, ramCrc: number): string {
  return `${createdAt}/${ramLength}/${ramCrc}`;
}

/** Mark the machine's RAM as equal to the snapshot `id` from now on. */
function setRamBase(machine: Machine, id: string): void {
  machine.mem.markClean();
  ramBase.set(machine, { id, marks: machine.mem.cleanMarks });
}

/** Write a checked RAM stream into guest RAM (cannot fail). Runs of present pages are copied batch by batch, runs of absent ones cleared at once. */
export function applyRam(d: DecodedRam, ram: Uint8Array): void {
  const pages = Math.ceil(d.ramBytes / PAGE_BYTES);
  const present = (p: number) => (d.bitmap[p >> 3] & (1 << (p & 7))) !== 0;
  let ci = 0;
  let co = 0;
  for (let p = 0; p < pages; ) {
    const on = present(p);
    let q = p + 1;
    while (q < pages && present(q) === on) q++;
    let at = p * PAGE_BYTES;
    const end = Math.min(q * PAGE_BYTES, d.ramBytes);
    if (on) {
      while (at < end) {
        const c = d.chunks[ci];
        const n = Math.min(end - at, c.length - co);
        ram.set(n === c.length ? c : c.subarray(co, co + n), at);
        at += n;
        co += n;
        if (co === c.length) {
          ci++;
          co = 0;
        }
      }
    } else if (d.kind === RamStreamKind.FULL) {
      clearRun(ram, at, end);
    }
    p = q;
  }
}

/**
 * Zero ram[start, end), skipping the 64 KiB groups that are zero already:
 * reading is cheaper than writing, and guest RAM the guest never touched is
 * host memory never faulted in, which a fill would allocate.
 */
function clearRun(ram: Uint8Array, start: number, end: number): void {
  const buf = Buffer.from(ram.buffer, ram.byteOffset, ram.byteLength);
  const G = zeroGroup.length;
  let at = start;
  while (at < end) {
    const n = Math.min(G, end - at);
    const piece = buf.subarray(at, at + n);
    if (!(n === G ? piece.equals(zeroGroup) : piece.equals(zeroGroup.subarray(0, n)))) piece.fill(0);
    at += n;
  }
}

/** Append a section; returns the CRC-32 of its stored bytes. */
function writeSection(out: StreamParts, name: string, raw: Uint8Array | StreamParts): number {
  let parts: Uint8Array[];
  let rawLen: number;
  let flags = 0;
  if (raw instanceof Uint8Array) {
    rawLen = raw.length;
    parts = [raw];
    if (raw.length > DEFLATE_ABOVE) {
      parts = [deflateRawSync(raw, { level: DEFLATE_LEVEL, chunkSize: Math.max(64, raw.length + (raw.length >> 6) + 64) })];
      flags |= FLAG_DEFLATE;
    }
  } else {
    rawLen = raw.length;
    parts = raw.parts;
  }
  let storedLen = 0;
  let crc = 0;
  for (const p of parts) {
    storedLen += p.length;
    crc = crc32(p, crc);
  }
  const nameBytes = Buffer.from(name, 'utf8');
  const w = new ByteWriter();
  w.u16(nameBytes.length);
  w.bytes(nameBytes);
  w.u8(flags);
  w.u32(storedLen);
  w.u32(rawLen);
  w.u32(crc);
  const h = w.view();
  out.parts.push(h, ...parts);
  out.length += h.length + storedLen;
  return crc;
}

export interface SnapshotMeta {
  name?: string;
  description?: string;
}

/** Typed arrays in a state at least this large travel as page streams of their own (`arr` sections), not inside the state value. */
const BIG_ARRAY_BYTES = 64 << 10;
/** The `arr` section name prefix: "arr " + JSON [owner section, ...path]. */
const ARR_PREFIX = 'arr ';

/**
 * Take the large typed arrays out of a state value: each is replaced by null
 * and handed to `found` with its path (keys and array indices).
 */
function takeBigArrays(v: unknown, path: (string | number)[], found: (path: (string | number)[], a: ArrayBufferView) => void): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) {
    if (v.byteLength >= BIG_ARRAY_BYTES && typedArrayTag(v) !== undefined) {
      found(path, v);
      return null;
    }
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => takeBigArrays(x, [...path, i], found));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = takeBigArrays(x, [...path, k], found);
  return out;
}

/** Write a state section, and its large typed arrays as `arr` sections after it. */
function writeStateSection(out: StreamParts, name: string, value: unknown): void {
  const arrays: [string, ArrayBufferView][] = [];
  const rest = takeBigArrays(value, [], (path, a) => arrays.push([ARR_PREFIX + JSON.stringify([name, ...path]), a]));
  writeSection(out, name, encodeValue(rest));
  for (const [arrName, a] of arrays) {
    const stream = encodeRamParts(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    const tag = Uint8Array.of(typedArrayTag(a) as number);
    writeSection(out, arrName, { parts: [tag, ...stream.parts], length: stream.length + 1 });
  }
}

/** Decode a state section and put its `arr` sections back in place (changes nothing else). */
function readStateSection(file: SnapshotFile, name: string): unknown {
  const b = file.sections.get(name);
  if (!b) throw new SnapshotError(`the snapshot has no ${name} section`);
  const value = decodeValue(b, `section ${name}`);
  for (const [secName, bytes] of file.sections) {
    if (!secName.startsWith(ARR_PREFIX)) continue;
    let path: unknown;
    try {
      path = JSON.parse(secName.slice(ARR_PREFIX.length));
    } catch {
      path = null;
    }
    if (!Array.isArray(path) || path.length < 2 || !path.every((x) => typeof x === 'string' || Number.isInteger(x))) throw new SnapshotError(`the snapshot has a malformed section name ${JSON.stringify(secName)}`);
    if (path[0] !== name) continue;
    const what = `section ${secName}`;
    let at: unknown = value;
    for (const k of path.slice(1, -1)) at = typeof at === 'object' && at !== null && Object.prototype.hasOwnProperty.call(at, k) ? (at as Record<string, unknown>)[k] : undefined;
    const last = path[path.length - 1] as string | number;
    if (typeof at !== 'object' || at === null || ArrayBuffer.isView(at) || !Object.prototype.hasOwnProperty.call(at, last) || (at as Record<string, unknown>)[last] !== null) {
      throw new SnapshotError(`the snapshot's ${what} has no place in section ${name}`);
    }
    if (bytes.length < 1) throw new SnapshotError(`the snapshot's ${what} is empty`);
    const d = decodeRam(bytes.subarray(1), what);
    if (d.kind !== RamStreamKind.FULL) throw new SnapshotError(`the snapshot's ${what} is a delta`);
    const buf = new ArrayBuffer(d.ramBytes);
    const arr = typedArrayOf(bytes[0], buf);
    if (!arr) throw new SnapshotError(`the snapshot's ${what} is of unknown array kind ${bytes[0]} or a size not a whole number of its elements`);
    applyRam(d, new Uint8Array(buf));
    (at as Record<string, unknown>)[last] = arr;
  }
  return value;
}

/**
 * A running machine's state as VmFolder.saveSnapshot() and suspend() take
 * it: the folder writes the bytes and the tree entry without loading this
 * module (the codec), which only a running machine needs. Read it between
 * slices.
 */
export interface MachineStateSource {
  /** The RAM's size: the bulk of encoding, for progress. */
  readonly ramBytes: number;
  /** The snapshot file's bytes (encodeSnapshot); `progress` hears the RAM bytes encoded so far. */
  encode(meta: SnapshotMeta, progress?: (ramBytesDone: number) => void): Uint8Array;
  /** Guest time, seconds. */
  readonly guestSeconds: number;
  /** The text screen's first 25 rows (the snapshot's thumbnail), or null in a graphics mode. */
  readonly screen: string[] | null;
}

/** `machine`'s state, of the machine `spec` describes, for a VM folder to save. */
export function machineState(machine: Machine, spec: MachineSpec): MachineStateSource {
  return {
    ramBytes: machine.config.memoryBytes,
    encode: (meta, progress) => encodeSnapshot(machine, spec, meta, progress),
    get guestSeconds() {
      return machine.clock.nowNs / 1e9;
    },
    get screen() {
      return machine.vga.displayMode() === 'text' ? machine.vga.renderText().chars.slice(0, 25).map((r) => r.replace(/\s+$/, '')) : null;
    },
  };
}

/**
 * Encode the machine's whole state as a snapshot file's bytes. Call between
 * slices; the machine's state is not changed (its dirty-page mark is: RAM
 * now equals this snapshot's, for a quick way back, restoreSnapshot).
 */
/** `progress` is told the bytes of RAM encoded so far (the bulk of the work), up to all of it. */
export function encodeSnapshot(machine: Machine, spec: MachineSpec, meta: SnapshotMeta = {}, progress?: (ramBytesDone: number) => void): Uint8Array {
  const { state, ram } = machine.saveStateWithoutRam();
  const screen = machine.vga.displayMode() === 'text' ? machine.vga.renderText().chars.map((r) => r.replace(/\s+$/, '')) : null;
  const header: SnapshotHeader = {
    spec,
    machineStateVersion: state.version,
    ramBytes: ram.length,
    devices: machine.devices().map((d) => ({ id: d.id, schema: d.schema.name, version: d.schema.version })),
    name: meta.name ?? '',
    description: meta.description ?? '',
    createdAt: new Date().toISOString(),
    guestSeconds: machine.clock.nowNs / 1e9,
    screen,
  };
  const out: StreamParts = { parts: [], length: 0 };
  const start = new ByteWriter();
  start.bytes(Buffer.from(SNAPSHOT_MAGIC, 'latin1'));
  start.u32(SNAPSHOT_VERSION);
  out.parts.push(start.view());
  out.length += start.length;
  writeSection(out, 'header', Buffer.from(JSON.stringify(header), 'utf8'));
  writeStateSection(out, 'cpu', state.cpu);
  writeStateSection(out, 'fpu', state.fpu);
  writeStateSection(out, 'machine', { clock: state.clock, a20: state.a20, stopReason: state.stopReason, resets: state.resets });
  for (const d of machine.devices()) writeStateSection(out, `dev/${d.id}`, state.devices[d.id]);
  const ramStream = encodeRamParts(ram, undefined, progress);
  const ramCrc = writeSection(out, 'ram', ramStream);
  writeSection(out, 'end', new Uint8Array(0));
  setRamBase(machine, ramIdentity(header.createdAt, ramStream.length, ramCrc));
  return joinParts(out.parts, out.length);
}

/** The sections of a file whose structure and checksums are sound. */
export interface SnapshotFile {
  header: SnapshotHeader;
  sections: Map<string, Uint8Array>;
  /** Each section's CRC-32 of its stored bytes, as parseSnapshot checked it. */
  crcs?: Map<string, number>;
}

/** Parse a snapshot file's bytes: magic, version, every section's bounds and CRC, the header. Changes nothing. */
export function parseSnapshot(bytes: Uint8Array, what = 'the snapshot'): SnapshotFile {
  const r = new ByteReader(bytes, what);
  try {
    if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== SNAPSHOT_MAGIC) {
      throw new SnapshotError(`${what} is not a tsvm snapshot (no ${SNAPSHOT_MAGIC} signature)`);
    }
    r.pos = 8;
    const version = r.u32();
    if (version !== SNAPSHOT_VERSION) {
      const hint = version < SNAPSHOT_VERSION ? ' (an older tsvm wrote it; load it there and save it again, or boot afresh)' : ' (a newer tsvm wrote it)';
      throw new SnapshotError(`${what} is of format version ${version}; this tsvm reads version ${SNAPSHOT_VERSION} only${hint}`);
    }
    const sections = new Map<string, Uint8Array>();
    const crcs = new Map<string, number>();
    let ended = false;
    while (!ended) {
      if (r.left === 0) throw new SnapshotError(`${what} is truncated: it ends before its end section`);
      const name = Buffer.from(r.bytes(r.u16())).toString('utf8');
      const flags = r.u8();
      const storedLen = r.u32();
      const rawLen = r.u32();
      const crc = r.u32();
      if (storedLen > MAX_SECTION || rawLen > MAX_SECTION) throw new SnapshotError(`${what}: section ${name} is too large`);
      if (storedLen > r.left) throw new SnapshotError(`${what} is truncated: section ${name} needs ${storedLen} bytes, ${r.left} are left`);
      const stored = r.bytes(storedLen);
      if (crc32(stored) !== crc) throw new SnapshotError(`${what} is corrupted: section ${name} fails its checksum`);
      if (flags & ~FLAG_DEFLATE) throw new SnapshotError(`${what}: section ${name} has unknown flags ${flags}`);
      if (sections.has(name)) throw new SnapshotError(`${what}: section ${name} appears twice`);
      let raw = stored;
      if (flags & FLAG_DEFLATE) {
        try {
          const b = inflateRawSync(stored, { maxOutputLength: Math.max(rawLen, 1), chunkSize: Math.max(64, rawLen) });
          raw = new Uint8Array(b.buffer, b.byteOffset, b.length);
        } catch (e) {
          throw new SnapshotError(`${what}: section ${name} does not decompress: ${(e as Error).message}`);
        }
      }
      if (raw.length !== rawLen) throw new SnapshotError(`${what}: section ${name} holds ${raw.length} bytes, its size says ${rawLen}`);
      if (name === 'end') ended = true;
      else {
        sections.set(name, raw);
        crcs.set(name, crc);
      }
    }
    if (r.left !== 0) throw new SnapshotError(`${what} has ${r.left} bytes after its end section`);
    const h = sections.get('header');
    if (!h) throw new SnapshotError(`${what} has no header section`);
    let header: SnapshotHeader;
    try {
      header = JSON.parse(Buffer.from(h).toString('utf8')) as SnapshotHeader;
    } catch {
      throw new SnapshotError(`${what}: the header is not JSON`);
    }
    if (typeof header !== 'object' || header === null) throw new SnapshotError(`${what}: the header is not an object`);
    try {
      header.spec = validateSpec(header.spec);
    } catch (e) {
      if (e instanceof VmConfigError) throw new SnapshotError(`${what}: its machine spec is invalid: ${e.message}`);
      throw e;
    }
    if (!Array.isArray(header.devices) || !header.devices.every((d) => typeof d?.id === 'string' && typeof d.schema === 'string' && Number.isInteger(d.version))) {
      throw new SnapshotError(`${what}: the header's device list is malformed`);
    }
    for (const need of ['cpu', 'fpu', 'machine', 'ram']) if (!sections.has(need)) throw new SnapshotError(`${what} has no ${need} section`);
    return { header, sections, crcs };
  } catch (e) {
    if (e instanceof StateError) throw new SnapshotError(e.message.replace(/: truncated/, ' is truncated'));
    throw e;
  }
}

/**
 * Load a parsed snapshot into a machine built from `spec`. Everything is
 * checked first (the spec matches, the device list and schema versions
 * match, every state decodes and validates, the RAM stream inflates to the
 * right size); only then does the machine change. Loading the snapshot this
 * machine last saved or loaded writes back only the RAM pages dirtied since
 * (docs/snapshot-format.md, "The way back").
 */
export function restoreSnapshot(machine: Machine, spec: MachineSpec, file: SnapshotFile): RestoreStats {
  const { header, sections } = file;
  const mismatch = specMismatch(spec, header.spec);
  if (mismatch) throw new SnapshotError(`the snapshot was made for another machine configuration: ${mismatch}`);
  const have = machine.devices();
  for (const d of have) {
    const h = header.devices.find((x) => x.id === d.id);
    if (!h) throw new SnapshotError(`the snapshot has no state for device ${d.id}`);
    if (h.schema !== d.schema.name || h.version !== d.schema.version) {
      throw new SnapshotError(`the snapshot holds device ${d.id} as ${h.schema} version ${h.version}; this tsvm has ${d.schema.name} version ${d.schema.version}`);
    }
  }
  for (const h of header.devices) if (!have.some((d) => d.id === h.id)) throw new SnapshotError(`the snapshot holds device ${h.id}, which this machine does not have`);
  try {
    const m = readStateSection(file, 'machine') as Record<string, unknown>;
    if (typeof m !== 'object' || m === null) throw new StateError('section machine is not an object');
    const devices: Record<string, object> = {};
    for (const d of have) {
      if (!sections.has(`dev/${d.id}`)) throw new SnapshotError(`the snapshot has no section for device ${d.id}`);
      devices[d.id] = readStateSection(file, `dev/${d.id}`) as object;
    }
    const state = {
      version: header.machineStateVersion,
      cpu: readStateSection(file, 'cpu'),
      fpu: readStateSection(file, 'fpu'),
      clock: m.clock,
      a20: m.a20,
      stopReason: m.stopReason,
      resets: m.resets,
      devices,
    } as Omit<MachineState, 'ram'>;
    const ramSection = sections.get('ram') as Uint8Array;
    const id = ramIdentity(header.createdAt, ramSection.length, file.crcs?.get('ram') ?? crc32(ramSection));
    const base = ramBase.get(machine);
    // RAM equals this snapshot but for the pages written since: load those only
    const only = base && base.id === id && base.marks === machine.mem.cleanMarks && header.ramBytes === machine.mem.ramSize ? machine.mem.dirtyRamBitmap() : undefined;
    const ram = decodeRam(ramSection, 'the RAM stream', only);
    const owners = new Set(['cpu', 'fpu', 'machine', ...have.map((d) => `dev/${d.id}`)]);
    for (const name of sections.keys()) {
      if (name.startsWith(ARR_PREFIX) && !owners.has((JSON.parse(name.slice(ARR_PREFIX.length)) as string[])[0])) {
        throw new SnapshotError(`the snapshot has section ${JSON.stringify(name)}, which belongs to no state of this machine`);
      }
    }
    if (ram.kind !== RamStreamKind.FULL) throw new SnapshotError('the snapshot holds a RAM delta; it needs its base snapshot');
    if (ram.ramBytes !== header.ramBytes) throw new SnapshotError(`the RAM stream holds ${ram.ramBytes} bytes; the header says ${header.ramBytes}`);
    machine.loadStateWithoutRam(state, ram.ramBytes, (dst) => (only ? applyRamPages(ram, dst, only) : applyRam(ram, dst)));
    setRamBase(machine, id);
    let pages = Math.ceil(ram.ramBytes / PAGE_BYTES);
    if (only) {
      pages = 0;
      for (const b of only) for (let x = b; x; x &= x - 1) pages++;
    }
    return { ramPagesWritten: pages };
  } catch (e) {
    if (e instanceof StateError) throw new SnapshotError(`the snapshot's state does not fit this machine: ${e.message}`);
    throw e;
  }
}

/** What a restore did. */
export interface RestoreStats {
  /** RAM pages written: all of them, or the pages written since this snapshot was saved or loaded (the fast way back). */
  ramPagesWritten: number;
}


/** Read and check a snapshot file (changes nothing). */
export function readSnapshotFile(path: string): SnapshotFile {
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new SnapshotError(`${path} is not a file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    throw new SnapshotError(`cannot read the snapshot ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseSnapshot(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), `the snapshot ${path}`);
}

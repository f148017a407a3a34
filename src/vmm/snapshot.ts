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
 * state/codec.ts), then `ram`: a page stream (a bitmap of the pages present,
 * then those pages deflated; zero pages are absent). A RAM stream is `full`
 * (absent pages are zero) or `delta` (absent pages are unchanged from the
 * state the stream is applied to: incremental snapshots and migration rounds
 * send only dirty pages).
 *
 * Reading validates everything (magic, version, every section's length and
 * checksum, the header, the spec against the running machine's, every
 * device state against its schema, the RAM stream's size) before the machine
 * changes at all.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Machine, MachineState } from '../board/machine.js';
import { ByteReader, ByteWriter, decodeValue, encodeValue } from '../state/codec.js';
import { StateError } from '../state/state.js';
import { specMismatch, validateSpec, VmConfigError, type MachineSpec } from './spec.js';

export const SNAPSHOT_MAGIC = 'TSVMSNAP';
/** The file format version this tsvm writes and the only one it reads. */
export const SNAPSHOT_VERSION = 1;
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

/** A file that cannot be used, with what is wrong with it. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

const zeroPage = Buffer.alloc(PAGE_BYTES);

/**
 * Encode RAM as a page stream. `dirty` (one bit per page, LSB first) limits
 * it to those pages and makes it a delta; otherwise it is full and zero pages
 * are left out.
 */
export function encodeRam(ram: Uint8Array, dirty?: Uint8Array): Uint8Array {
  const pages = Math.ceil(ram.length / PAGE_BYTES);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const present: Buffer[] = [];
  const buf = Buffer.from(ram.buffer, ram.byteOffset, ram.byteLength);
  for (let p = 0; p < pages; p++) {
    if (dirty && !(dirty[p >> 3] & (1 << (p & 7)))) continue;
    const page = buf.subarray(p * PAGE_BYTES, Math.min((p + 1) * PAGE_BYTES, ram.length));
    if (!dirty && page.length === PAGE_BYTES && page.equals(zeroPage)) continue;
    bitmap[p >> 3] |= 1 << (p & 7);
    present.push(page);
  }
  const data = deflateRawSync(Buffer.concat(present), { level: DEFLATE_LEVEL });
  const w = new ByteWriter();
  w.u8(dirty ? RamStreamKind.DELTA : RamStreamKind.FULL);
  w.u32(PAGE_BYTES);
  w.u32(ram.length);
  w.bytes(bitmap);
  w.bytes(data);
  return w.view().slice();
}

/** A checked RAM stream, ready to be applied without failing. */
export interface DecodedRam {
  kind: RamStreamKind;
  ramBytes: number;
  bitmap: Uint8Array;
  /** The present pages, in order. */
  pages: Uint8Array;
}

/** Check and inflate a RAM stream (does not touch any machine). */
export function decodeRam(b: Uint8Array): DecodedRam {
  const r = new ByteReader(b, 'snapshot section ram');
  const kind = r.u8();
  if (kind !== RamStreamKind.FULL && kind !== RamStreamKind.DELTA) throw new SnapshotError(`the RAM stream is of unknown kind ${kind}`);
  const pageBytes = r.u32();
  if (pageBytes !== PAGE_BYTES) throw new SnapshotError(`the RAM stream has ${pageBytes}-byte pages; tsvm reads ${PAGE_BYTES}`);
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
  for (let p = pages; p < bitmap.length * 8; p++) if (bitmap[p >> 3] & (1 << (p & 7))) throw new SnapshotError('the RAM stream marks pages beyond its RAM size');
  const expect = count * PAGE_BYTES - (lastPresent === pages - 1 && ramBytes % PAGE_BYTES ? PAGE_BYTES - (ramBytes % PAGE_BYTES) : 0);
  let data: Buffer;
  try {
    data = inflateRawSync(r.bytes(r.left), { maxOutputLength: Math.max(expect, 1) });
  } catch (e) {
    throw new SnapshotError(`the RAM stream does not decompress: ${(e as Error).message}`);
  }
  if (data.length !== expect) throw new SnapshotError(`the RAM stream holds ${data.length} bytes of pages; its bitmap says ${expect}`);
  return { kind, ramBytes, bitmap, pages: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Write a checked RAM stream into guest RAM (cannot fail). Runs of present or absent pages are copied or cleared at once. */
export function applyRam(d: DecodedRam, ram: Uint8Array): void {
  const pages = Math.ceil(d.ramBytes / PAGE_BYTES);
  const present = (p: number) => (d.bitmap[p >> 3] & (1 << (p & 7))) !== 0;
  let src = 0;
  for (let p = 0; p < pages; ) {
    const on = present(p);
    let q = p + 1;
    while (q < pages && present(q) === on) q++;
    const start = p * PAGE_BYTES;
    const end = Math.min(q * PAGE_BYTES, d.ramBytes);
    if (on) {
      ram.set(d.pages.subarray(src, src + (end - start)), start);
      src += end - start;
    } else if (d.kind === RamStreamKind.FULL) {
      ram.fill(0, start, end);
    }
    p = q;
  }
}

function writeSection(w: ByteWriter, name: string, raw: Uint8Array): void {
  let stored = raw;
  let flags = 0;
  if (raw.length > DEFLATE_ABOVE && name !== 'ram') {
    stored = deflateRawSync(raw, { level: DEFLATE_LEVEL });
    flags |= FLAG_DEFLATE;
  }
  const nameBytes = Buffer.from(name, 'utf8');
  w.u16(nameBytes.length);
  w.bytes(nameBytes);
  w.u8(flags);
  w.u32(stored.length);
  w.u32(raw.length);
  w.u32(crc32(stored));
  w.bytes(stored);
}

export interface SnapshotMeta {
  name?: string;
  description?: string;
}

/** Encode the machine's whole state as a snapshot file's bytes. Call between slices; the machine is not changed. */
export function encodeSnapshot(machine: Machine, spec: MachineSpec, meta: SnapshotMeta = {}): Uint8Array {
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
  const w = new ByteWriter();
  w.bytes(Buffer.from(SNAPSHOT_MAGIC, 'latin1'));
  w.u32(SNAPSHOT_VERSION);
  writeSection(w, 'header', Buffer.from(JSON.stringify(header), 'utf8'));
  writeSection(w, 'cpu', encodeValue(state.cpu));
  writeSection(w, 'fpu', encodeValue(state.fpu));
  writeSection(w, 'machine', encodeValue({ clock: state.clock, a20: state.a20, stopReason: state.stopReason, resets: state.resets }));
  for (const d of machine.devices()) writeSection(w, `dev/${d.id}`, encodeValue(state.devices[d.id]));
  writeSection(w, 'ram', encodeRam(ram));
  writeSection(w, 'end', new Uint8Array(0));
  return w.view();
}

/** The sections of a file whose structure and checksums are sound. */
export interface SnapshotFile {
  header: SnapshotHeader;
  sections: Map<string, Uint8Array>;
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
    if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`${what} is of format version ${version}; this tsvm reads version ${SNAPSHOT_VERSION} only`);
    const sections = new Map<string, Uint8Array>();
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
          const b = inflateRawSync(stored, { maxOutputLength: Math.max(rawLen, 1) });
          raw = new Uint8Array(b.buffer, b.byteOffset, b.length);
        } catch (e) {
          throw new SnapshotError(`${what}: section ${name} does not decompress: ${(e as Error).message}`);
        }
      }
      if (raw.length !== rawLen) throw new SnapshotError(`${what}: section ${name} holds ${raw.length} bytes, its size says ${rawLen}`);
      if (name === 'end') ended = true;
      else sections.set(name, raw);
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
    return { header, sections };
  } catch (e) {
    if (e instanceof StateError) throw new SnapshotError(e.message.replace(/: truncated/, ' is truncated'));
    throw e;
  }
}

/**
 * Load a parsed snapshot into a machine built from `spec`. Everything is
 * checked first (the spec matches, the device list and schema versions
 * match, every state decodes and validates, the RAM stream inflates to the
 * right size); only then does the machine change.
 */
export function restoreSnapshot(machine: Machine, spec: MachineSpec, file: SnapshotFile): void {
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
    const m = decodeValue(sections.get('machine') as Uint8Array, 'section machine') as Record<string, unknown>;
    if (typeof m !== 'object' || m === null) throw new StateError('section machine is not an object');
    const devices: Record<string, object> = {};
    for (const d of have) {
      const b = sections.get(`dev/${d.id}`);
      if (!b) throw new SnapshotError(`the snapshot has no section for device ${d.id}`);
      devices[d.id] = decodeValue(b, `section dev/${d.id}`) as object;
    }
    const state = {
      version: header.machineStateVersion,
      cpu: decodeValue(sections.get('cpu') as Uint8Array, 'section cpu'),
      fpu: decodeValue(sections.get('fpu') as Uint8Array, 'section fpu'),
      clock: m.clock,
      a20: m.a20,
      stopReason: m.stopReason,
      resets: m.resets,
      devices,
    } as Omit<MachineState, 'ram'>;
    const ram = decodeRam(sections.get('ram') as Uint8Array);
    if (ram.kind !== RamStreamKind.FULL) throw new SnapshotError('the snapshot holds a RAM delta; it needs its base snapshot');
    if (ram.ramBytes !== header.ramBytes) throw new SnapshotError(`the RAM stream holds ${ram.ramBytes} bytes; the header says ${header.ramBytes}`);
    machine.loadStateWithoutRam(state, ram.ramBytes, (dst) => applyRam(ram, dst));
  } catch (e) {
    if (e instanceof StateError) throw new SnapshotError(`the snapshot's state does not fit this machine: ${e.message}`);
    throw e;
  }
}

/** Write bytes to `path` so that a crash leaves either the old file or the whole new one. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // some file systems cannot fsync a directory; the rename is still atomic
  }
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

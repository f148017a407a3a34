/**
 * What the storage layer needs from a host: files it can read and write at byte
 * offsets, and a way to open another file by name (a backing file). Node
 * implements it over file descriptors (src/host/node/file.ts), a browser over
 * an in-memory buffer or OPFS; MemoryFile below is the in-memory one.
 *
 * Everything is synchronous, as the block devices are (docs/storage.md).
 */

import { iovFill, iovLength, iovSkip, type IoVec } from './iovec.js';

/** A file an image lives in. */
export interface StorageFile {
  /** The name the file was opened by (for messages and for resolving backing files). */
  readonly name: string;
  /** True when write() is refused. */
  readonly readOnly: boolean;
  /** Current length in bytes (grows as writes extend the file). */
  size(): number;
  /** Read up to dst.length bytes at pos; returns how many were read (short only at the end of the file). */
  read(pos: number, dst: Uint8Array): number;
  /** Write all of src at pos, extending the file if needed. */
  write(pos: number, src: Uint8Array): void;
  /** Read into the buffers in order from pos (one readv); returns bytes read (short only at the end of the file). Optional: readFullv loops over read without it. */
  readv?(pos: number, dsts: IoVec): number;
  /** Write all the buffers in order from pos (one writev). Optional: writeAllv loops over write without it. */
  writev?(pos: number, srcs: IoVec): void;
  /** Make the writes so far durable (fsync). Also the ordering barrier between metadata updates. */
  sync(): void;
  close(): void;
}

/** Opens files by name; given to image openers so they can follow backing files. */
export interface StorageHost {
  open(name: string, writable: boolean): StorageFile;
  /** The name of `ref` (a backing file name as stored in an image) seen from the image named `from`. */
  resolve(from: string, ref: string): string;
  /** Raw deflate (RFC 1951) decompression into dst; returns the bytes produced. Absent: compressed clusters cannot be read. */
  inflateRaw?(src: Uint8Array, dst: Uint8Array): number;
}

/** What went wrong, for callers that react differently (the CLI prints the message either way). */
export type StorageErrorCode =
  | 'NOT_FOUND' // a file (usually a backing file) does not exist
  | 'BAD_IMAGE' // the header or a table is invalid: refused before use
  | 'UNSUPPORTED' // a valid image using a feature tsvm does not implement
  | 'READ_ONLY' // a write to an image that cannot be written
  | 'IO'; // the host file failed

/** A clear, user-facing error from the storage layer. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

/**
 * A disk image as a device sees it: a fixed number of bytes. The same shape as
 * devices/backends.ts's BlockBackend (this layer may not import devices), plus
 * the format and close().
 */
export interface DiskImage {
  readonly format: 'raw' | 'qcow2';
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Fill dst from the virtual disk at offset; bytes beyond the end read as 0. */
  read(offset: number, dst: Uint8Array): void;
  /** Store src at offset (within sizeBytes). */
  write(offset: number, src: Uint8Array): void;
  /** read() into a list of buffers taken as one: one file call per contiguous run of the image. */
  readv(offset: number, dsts: IoVec): void;
  /** write() of a list of buffers taken as one. */
  writev(offset: number, srcs: IoVec): void;
  /** Make completed writes durable. */
  flush(): void;
  /** Release the file (and any backing files). */
  close(): void;
}

/** A file held in memory: for tests, fuzzing and a browser page given an ArrayBuffer. */
export class MemoryFile implements StorageFile {
  private _buf: Uint8Array;
  private _len: number;

  constructor(
    readonly name: string,
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
  ) {
    this._buf = new Uint8Array(Math.max(initial.length, 4096));
    this._buf.set(initial);
    this._len = initial.length;
  }

  size(): number {
    return this._len;
  }

  /** The file's current bytes (a copy). */
  bytes(): Uint8Array {
    return this._buf.slice(0, this._len);
  }

  read(pos: number, dst: Uint8Array): number {
    if (pos >= this._len) return 0;
    const n = Math.min(dst.length, this._len - pos);
    dst.set(this._buf.subarray(pos, pos + n));
    return n;
  }

  write(pos: number, src: Uint8Array): void {
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.name} is read-only`);
    const end = pos + src.length;
    if (end > this._buf.length) {
      const next = new Uint8Array(Math.max(end, this._buf.length * 2));
      next.set(this._buf.subarray(0, this._len));
      this._buf = next;
    }
    this._buf.set(src, pos);
    if (end > this._len) this._len = end;
  }

  sync(): void {}
  close(): void {}
}

/** Read exactly dst.length bytes at pos, zero-filling past the end of the file. */
export function readFull(file: StorageFile, pos: number, dst: Uint8Array): number {
  let done = 0;
  while (done < dst.length) {
    const n = file.read(pos + done, dst.subarray(done));
    if (n <= 0) break;
    done += n;
  }
  if (done < dst.length) dst.fill(0, done);
  return done;
}

/** Read exactly the buffers' total length at pos, zero-filling past the end of the file: the file's readv, or readFull per buffer. */
export function readFullv(file: StorageFile, pos: number, dsts: IoVec): number {
  if (dsts.length === 1) return readFull(file, pos, dsts[0]);
  if (!file.readv) {
    let done = 0;
    let at = pos;
    for (const d of dsts) {
      done += readFull(file, at, d); // zero-fills what lies past the end of the file
      at += d.length;
    }
    return done;
  }
  const total = iovLength(dsts);
  let done = 0;
  let rest: IoVec = dsts;
  while (done < total) {
    const n = file.readv(pos + done, rest);
    if (n <= 0) break;
    done += n;
    if (done < total) rest = iovSkip(rest, n);
  }
  if (done < total) iovFill(done === 0 ? dsts : iovSkip(dsts, done), 0);
  return done;
}

/** Write all the buffers at pos: the file's writev, or one write per buffer. */
export function writeAllv(file: StorageFile, pos: number, srcs: IoVec): void {
  if (srcs.length === 1) return file.write(pos, srcs[0]);
  if (file.writev) return file.writev(pos, srcs);
  for (const s of srcs) {
    file.write(pos, s);
    pos += s.length;
  }
}

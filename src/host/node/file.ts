/**
 * The storage layer's files on Node: StorageFile over a file descriptor, and a
 * StorageHost that opens files by path, resolves backing-file names against the
 * image's folder (as QEMU does) and inflates compressed clusters with zlib.
 */
import { closeSync, constants as fsc, fstatSync, fsyncSync, openSync, readSync, readvSync, writeSync, writevSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { constants as zc, inflateRawSync } from 'node:zlib';
import { StorageError, type StorageFile, type StorageHost } from '../../storage/file.js';
import { iovLength, iovSkip, type IoVec } from '../../storage/iovec.js';

export class NodeFile implements StorageFile {
  private _fd: number;
  private _size: number;

  constructor(
    readonly name: string,
    fd: number,
    readonly readOnly: boolean,
  ) {
    this._fd = fd;
    this._size = fstatSync(fd).size;
  }

  /** Open `path` (read-write when `writable`); StorageError NOT_FOUND / IO otherwise. */
  static open(path: string, writable: boolean): NodeFile {
    try {
      return new NodeFile(path, openSync(path, writable ? fsc.O_RDWR : fsc.O_RDONLY), !writable);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new StorageError('NOT_FOUND', `${path} does not exist`);
      if (code === 'EISDIR') throw new StorageError('IO', `${path} is a directory, not an image file`);
      throw new StorageError('IO', `cannot open ${path}${writable ? ' for writing' : ''}: ${(e as Error).message}`);
    }
  }

  size(): number {
    return this._size;
  }

  read(pos: number, dst: Uint8Array): number {
    try {
      return readSync(this._fd, dst, 0, dst.length, pos);
    } catch (e) {
      throw new StorageError('IO', `${this.name}: read at byte ${pos} failed: ${(e as Error).message}`);
    }
  }

  write(pos: number, src: Uint8Array): void {
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.name} is opened read-only`);
    let done = 0;
    try {
      while (done < src.length) done += writeSync(this._fd, src, done, src.length - done, pos + done);
    } catch (e) {
      throw new StorageError('IO', `${this.name}: write at byte ${pos + done} failed: ${(e as Error).message}`);
    }
    if (pos + src.length > this._size) this._size = pos + src.length;
  }

  readv(pos: number, dsts: IoVec): number {
    try {
      return readvFd(this._fd, pos, dsts);
    } catch (e) {
      throw new StorageError('IO', `${this.name}: read at byte ${pos} failed: ${(e as Error).message}`);
    }
  }

  writev(pos: number, srcs: IoVec): void {
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.name} is opened read-only`);
    let total: number;
    try {
      total = writevFd(this._fd, pos, srcs);
    } catch (e) {
      throw new StorageError('IO', `${this.name}: write at byte ${pos} failed: ${(e as Error).message}`);
    }
    if (pos + total > this._size) this._size = pos + total;
  }

  sync(): void {
    if (this.readOnly || this._fd < 0) return;
    try {
      fsyncSync(this._fd);
    } catch (e) {
      throw new StorageError('IO', `${this.name}: fsync failed: ${(e as Error).message}`);
    }
  }

  close(): void {
    if (this._fd >= 0) closeSync(this._fd);
    this._fd = -1;
  }
}

/** Files by path on this machine. */
export const nodeStorageHost: StorageHost = {
  open: (name, writable) => NodeFile.open(name, writable),
  resolve: (from, ref) => (isAbsolute(ref) ? ref : resolve(dirname(from), ref)),
  inflateRaw(src, dst) {
    // the compressed data may end mid-stream in its last sector's padding, or be followed by another cluster's: stop at a full cluster
    const out = inflateRawSync(src, { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: dst.length });
    dst.set(out.subarray(0, dst.length));
    return Math.min(out.length, dst.length);
  },
};

/** Linux's IOV_MAX: a longer list goes in several calls. */
const IOV_MAX = 1024;

/** readv at pos until the buffers are full or the file ends; returns bytes read (one call in the common case). */
export function readvFd(fd: number, pos: number, dsts: IoVec): number {
  const total = iovLength(dsts);
  let done = 0;
  let rest: IoVec = dsts;
  while (done < total) {
    const n = readvSync(fd, rest.length > IOV_MAX ? rest.slice(0, IOV_MAX) : (rest as Uint8Array[]), pos + done);
    if (n <= 0) break;
    done += n;
    if (done < total) rest = iovSkip(rest, n);
  }
  return done;
}

/** writev at pos until every byte is written (one call in the common case); returns the bytes written. */
export function writevFd(fd: number, pos: number, srcs: IoVec): number {
  const total = iovLength(srcs);
  let done = 0;
  let rest: IoVec = srcs;
  while (done < total) {
    const n = writevSync(fd, rest.length > IOV_MAX ? rest.slice(0, IOV_MAX) : (rest as Uint8Array[]), pos + done);
    done += n;
    if (done < total) rest = iovSkip(rest, n);
  }
  return done;
}

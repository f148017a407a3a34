/**
 * Block backends on Node: raw disk and CD images opened as files.
 *
 * Three modes, as QEMU's -drive/-hda/-cdrom options have them:
 * - `rw`: the file opened read-write; guest writes go straight to it.
 * - `ro`: the file opened read-only; the device reports writes as errors.
 * - `snapshot` (QEMU -snapshot): the file opened read-only, guest writes kept
 *   aside in memory in 4 KiB chunks and thrown away when the VM exits, so the
 *   image is never changed.
 *
 * A file the user cannot write, opened in `rw` mode, is opened read-only
 * instead and the result carries a warning for the CLI to print (QEMU does the
 * same for -hda on a read-only file).
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import type { BlockBackend } from '../../devices/backends.js';

/** How a block image is opened. */
export type BlockMode = 'rw' | 'ro' | 'snapshot';

/** What went wrong opening an image. */
export type BlockErrorCode = 'NOT_FOUND' | 'IS_DIRECTORY' | 'NOT_A_FILE' | 'UNREADABLE' | 'EMPTY' | 'IO';

/** A host-side error opening or accessing a block image; the message says what to do. */
export class BlockBackendError extends Error {
  constructor(
    readonly code: BlockErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BlockBackendError';
  }
}

/** Size of the copy-on-write chunks kept by snapshot mode. */
export const SNAPSHOT_CHUNK_BYTES = 4096;

/** A raw image file. */
export class FileBlockBackend implements BlockBackend {
  readonly sizeBytes: number;
  private _fd: number;

  constructor(
    readonly path: string,
    fd: number,
    sizeBytes: number,
    readonly readOnly: boolean,
  ) {
    this._fd = fd;
    this.sizeBytes = sizeBytes;
  }

  read(offset: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const pos = offset + done;
      if (pos >= this.sizeBytes) break;
      let n: number;
      try {
        n = readSync(this._fd, dst, done, dst.length - done, pos);
      } catch (e) {
        throw new BlockBackendError('IO', `${this.path}: read at byte ${pos} failed: ${(e as Error).message}`);
      }
      if (n === 0) break;
      done += n;
    }
    if (done < dst.length) dst.fill(0, done);
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new BlockBackendError('IO', `${this.path}: image is read-only`);
    let done = 0;
    while (done < src.length) {
      try {
        done += writeSync(this._fd, src, done, src.length - done, offset + done);
      } catch (e) {
        throw new BlockBackendError('IO', `${this.path}: write at byte ${offset + done} failed: ${(e as Error).message}`);
      }
    }
  }

  flush(): void {
    if (this.readOnly || this._fd < 0) return;
    try {
      fsyncSync(this._fd);
    } catch (e) {
      throw new BlockBackendError('IO', `${this.path}: flush failed: ${(e as Error).message}`);
    }
  }

  /** Close the file. Further accesses fail. */
  close(): void {
    if (this._fd >= 0) closeSync(this._fd);
    this._fd = -1;
  }
}

/**
 * QEMU's -snapshot: reads come from the base image unless the guest wrote the
 * chunk, writes go to an in-memory map of 4 KiB chunks. The base is never
 * written; `discard()` (or exit) drops the guest's changes.
 */
export class SnapshotBlockBackend implements BlockBackend {
  readonly readOnly = false;
  readonly sizeBytes: number;
  private readonly _chunks = new Map<number, Uint8Array>();

  constructor(readonly base: BlockBackend) {
    this.sizeBytes = base.sizeBytes;
  }

  /** Number of chunks the guest has written (memory used is this times SNAPSHOT_CHUNK_BYTES). */
  get dirtyChunks(): number {
    return this._chunks.size;
  }

  read(offset: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const pos = offset + done;
      const idx = Math.floor(pos / SNAPSHOT_CHUNK_BYTES);
      const within = pos - idx * SNAPSHOT_CHUNK_BYTES;
      const n = Math.min(SNAPSHOT_CHUNK_BYTES - within, dst.length - done);
      const chunk = this._chunks.get(idx);
      if (chunk) dst.set(chunk.subarray(within, within + n), done);
      else this.base.read(pos, dst.subarray(done, done + n));
      done += n;
    }
  }

  write(offset: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const pos = offset + done;
      const idx = Math.floor(pos / SNAPSHOT_CHUNK_BYTES);
      const within = pos - idx * SNAPSHOT_CHUNK_BYTES;
      const n = Math.min(SNAPSHOT_CHUNK_BYTES - within, src.length - done);
      let chunk = this._chunks.get(idx);
      if (!chunk) {
        chunk = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
        this.base.read(idx * SNAPSHOT_CHUNK_BYTES, chunk);
        this._chunks.set(idx, chunk);
      }
      chunk.set(src.subarray(done, done + n), within);
      done += n;
    }
  }

  /** Nothing to make durable: the changes are meant to vanish. */
  flush(): void {}

  /** Drop every guest write. */
  discard(): void {
    this._chunks.clear();
  }
}

/** The result of opening an image. */
export interface OpenedBlock {
  backend: BlockBackend;
  /** Set when the image was opened differently from what was asked (read-only fallback); the CLI prints it. */
  warning: string | null;
  /** Release the file (and, in snapshot mode, drop the guest's changes). */
  close(): void;
}

/**
 * Open a raw image. `what` names the drive in messages ("-hda", "-cdrom").
 * Throws BlockBackendError for a missing, unreadable, non-regular or empty file.
 */
export function openBlockFile(path: string, mode: BlockMode, what: string): OpenedBlock {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new BlockBackendError('NOT_FOUND', `${what}: ${path} does not exist; check the path, or create an image first (for example: truncate -s 1G ${path})`);
    }
    throw new BlockBackendError('UNREADABLE', `${what}: cannot look at ${path}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    throw new BlockBackendError('IS_DIRECTORY', `${what}: ${path} is a directory; give the path of a disk image file inside it`);
  }
  if (!st.isFile()) {
    throw new BlockBackendError('NOT_A_FILE', `${what}: ${path} is not a regular file; give a raw disk or ISO image`);
  }

  let warning: string | null = null;
  let fd = -1;
  let readOnly = mode !== 'rw';
  if (mode === 'rw') {
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') {
        throw new BlockBackendError('UNREADABLE', `${what}: cannot open ${path}: ${(e as Error).message}`);
      }
      readOnly = true;
      warning = `${what}: ${path} is not writable, so it is opened read-only and the guest's writes will fail; use -snapshot to let the guest write to a throw-away copy, or make the file writable`;
    }
  }
  if (fd < 0) {
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (e) {
      throw new BlockBackendError('UNREADABLE', `${what}: cannot read ${path}: ${(e as Error).message}; check its permissions`);
    }
  }
  const size = fstatSync(fd).size;
  if (size === 0) {
    closeSync(fd);
    throw new BlockBackendError('EMPTY', `${what}: ${path} is empty (0 bytes); a disk image needs a size (for example: truncate -s 1G ${path})`);
  }
  const file = new FileBlockBackend(path, fd, size, readOnly);
  if (mode === 'snapshot') {
    const snap = new SnapshotBlockBackend(file);
    return {
      backend: snap,
      warning,
      close: () => {
        snap.discard();
        file.close();
      },
    };
  }
  return { backend: file, warning, close: () => file.close() };
}

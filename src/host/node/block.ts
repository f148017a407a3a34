/**
 * Block backends on Node: raw and qcow2 disk images and CD images opened as files
 * (qcow2 through src/storage).
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
import { accessSync, closeSync, constants, fstatSync, fsyncSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { BlockBackendError, type BlockErrorCode } from './block-error.js';
import { createQcow2File, qcow2Info, setQcow2BackingName } from './qcow2file.js';
import { blockReadv, type BlockBackend } from '../../devices/backends.js';
import { StorageError } from '../../storage/file.js';
import { detectFormat, openImage, type ImageFormat } from '../../storage/open.js';
import { nodeStorageHost, readvFd, writevFd } from './file.js';
import { IovCursor, iovCopyIn, iovFill, iovLength, iovSkip, type IoVec } from '../../storage/iovec.js';

/** How a block image is opened. */
export type BlockMode = 'rw' | 'ro' | 'snapshot';

export { BlockBackendError, type BlockErrorCode };
export { createQcow2File, qcow2Info, setQcow2BackingName };

/** Size of the copy-on-write chunks kept by snapshot mode. */
export const SNAPSHOT_CHUNK_BYTES = 4096;

/** A raw image file. */
export class FileBlockBackend implements BlockBackend {
  readonly sizeBytes: number;
  private _fd: number;
  /**
   * Set when the format was probed rather than given: the guest may not write
   * a first sector that would make the file look like another format (a qcow2
   * header naming a host file as its backing file), as QEMU restricts it.
   */
  guardProbedFormat = false;

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
    if (this.guardProbedFormat && offset < 512) {
      const first = new Uint8Array(512);
      this.read(0, first);
      first.set(src.subarray(0, 512 - offset), offset);
      if (detectFormat(first) !== 'raw') {
        throw new BlockBackendError('IO', `${this.path}: the guest tried to write an image-format header into sector 0 of a raw image whose format was probed; give format=raw to allow it`);
      }
    }
    let done = 0;
    while (done < src.length) {
      try {
        done += writeSync(this._fd, src, done, src.length - done, offset + done);
      } catch (e) {
        throw new BlockBackendError('IO', `${this.path}: write at byte ${offset + done} failed: ${(e as Error).message}`);
      }
    }
  }

  /** One readv for the whole list; past the end of the file reads as zeros. */
  readv(offset: number, dsts: IoVec): void {
    const total = iovLength(dsts);
    const cur = new IovCursor(dsts);
    const inFile = offset >= this.sizeBytes ? 0 : Math.min(total, this.sizeBytes - offset);
    let done = 0;
    if (inFile > 0) {
      try {
        done = readvFd(this._fd, offset, inFile === total ? dsts : cur.take(inFile));
      } catch (e) {
        throw new BlockBackendError('IO', `${this.path}: read at byte ${offset} failed: ${(e as Error).message}`);
      }
    }
    if (done < total) iovFill(iovSkip(dsts, done), 0);
  }

  /** One writev for the whole list. */
  writev(offset: number, srcs: IoVec): void {
    if (this.readOnly) throw new BlockBackendError('IO', `${this.path}: image is read-only`);
    if (this.guardProbedFormat && offset < 512) {
      const head = new Uint8Array(Math.min(512 - offset, iovLength(srcs)));
      let k = 0;
      for (const s of srcs) {
        if (k >= head.length) break;
        const n = Math.min(s.length, head.length - k);
        head.set(s.subarray(0, n), k);
        k += n;
      }
      this.write(offset, head); // checks sector 0 and writes those bytes
      const rest = iovSkip(srcs, head.length);
      if (rest.length > 0) this.writev(offset + head.length, rest);
      return;
    }
    try {
      writevFd(this._fd, offset, srcs);
    } catch (e) {
      throw new BlockBackendError('IO', `${this.path}: write at byte ${offset} failed: ${(e as Error).message}`);
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

  /** Runs of chunks the guest has not written go to the base as one vectored read. */
  readv(offset: number, dsts: IoVec): void {
    const total = iovLength(dsts);
    const cur = new IovCursor(dsts);
    let pos = offset;
    let runPos = offset;
    let run: Uint8Array[] = [];
    const flushRun = () => {
      if (run.length > 0) blockReadv(this.base, runPos, run);
      run = [];
    };
    while (pos < offset + total) {
      const idx = Math.floor(pos / SNAPSHOT_CHUNK_BYTES);
      const within = pos - idx * SNAPSHOT_CHUNK_BYTES;
      const n = Math.min(SNAPSHOT_CHUNK_BYTES - within, offset + total - pos);
      const chunk = this._chunks.get(idx);
      if (chunk) {
        flushRun();
        iovCopyIn(cur.take(n), chunk.subarray(within, within + n));
      } else {
        if (run.length === 0) runPos = pos;
        cur.take(n, run);
      }
      pos += n;
    }
    flushRun();
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
 * Open a disk or CD image. `what` names the drive in messages ("-hda",
 * "-cdrom"). `format` is raw or qcow2; when absent it is probed from the
 * file's magic (qcow2 by its header, anything else raw). Throws
 * BlockBackendError for a missing, unreadable, non-regular, empty or damaged
 * image, or one using a feature tsvm does not support.
 */
export function openBlockFile(path: string, mode: BlockMode, what: string, format?: ImageFormat): OpenedBlock {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new BlockBackendError('NOT_FOUND', `${what}: ${path} does not exist; check the path, or create an image first (for example: truncate -s 1G ${path}, or qemu-img create -f qcow2 ${path} 1G)`);
    }
    throw new BlockBackendError('UNREADABLE', `${what}: cannot look at ${path}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    throw new BlockBackendError('IS_DIRECTORY', `${what}: ${path} is a directory; give the path of a disk image file inside it`);
  }
  if (!st.isFile()) {
    throw new BlockBackendError('NOT_A_FILE', `${what}: ${path} is not a regular file; give a raw, qcow2 or ISO image`);
  }
  let fmt = format;
  const probed = fmt === undefined;
  if (!fmt) {
    const f = probeImageFormat(path, what);
    if (typeof f !== 'string') {
      throw new BlockBackendError('UNSUPPORTED', `${what}: ${path} is a ${f.foreign} image, which tsvm does not read; convert it with: qemu-img convert -O qcow2 ${path} disk.qcow2`);
    }
    fmt = f;
  }
  if (fmt === 'qcow2') return openQcow2(path, mode, what);
  const opened = openRaw(path, mode, what);
  if (probed && opened.backend instanceof FileBlockBackend) opened.backend.guardProbedFormat = true;
  return opened;
}

/** The format of the image at path, told by its first bytes (BlockBackendError UNREADABLE if it cannot be read). */
export function probeImageFormat(path: string, what: string): ImageFormat | { foreign: string } {
  const head = new Uint8Array(512);
  let fd = -1;
  try {
    fd = openSync(path, constants.O_RDONLY);
    readSync(fd, head, 0, 512, 0);
  } catch (e) {
    throw new BlockBackendError('UNREADABLE', `${what}: cannot read ${path}: ${(e as Error).message}; check its permissions`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return detectFormat(head);
}

const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS']);

function notWritableWarning(what: string, path: string): string {
  return `${what}: ${path} is not writable, so it is opened read-only and the guest's writes will fail; use -snapshot to let the guest write to a throw-away copy, or make the file writable`;
}

function openQcow2(path: string, mode: BlockMode, what: string): OpenedBlock {
  let warning: string | null = null;
  let readOnly = mode !== 'rw';
  if (!readOnly) {
    try {
      accessSync(path, constants.W_OK);
    } catch (e) {
      if (!NOT_WRITABLE.has((e as NodeJS.ErrnoException).code ?? '')) throw new BlockBackendError('UNREADABLE', `${what}: cannot open ${path}: ${(e as Error).message}`);
      readOnly = true;
      warning = notWritableWarning(what, path);
    }
  }
  let image;
  try {
    image = openImage(nodeStorageHost, path, { format: 'qcow2', readOnly });
  } catch (e) {
    if (!(e instanceof StorageError)) throw e;
    const code = e.code === 'NOT_FOUND' ? 'NOT_FOUND' : e.code === 'BAD_IMAGE' ? 'BAD_IMAGE' : e.code === 'UNSUPPORTED' ? 'UNSUPPORTED' : 'UNREADABLE';
    throw new BlockBackendError(code, `${what}: ${e.message}`);
  }
  const img = image;
  if (mode === 'snapshot') {
    const snap = new SnapshotBlockBackend(img);
    return {
      backend: snap,
      warning,
      close: () => {
        snap.discard();
        img.close();
      },
    };
  }
  return { backend: img, warning, close: () => img.close() };
}

function openRaw(path: string, mode: BlockMode, what: string): OpenedBlock {
  let warning: string | null = null;
  let fd = -1;
  let readOnly = mode !== 'rw';
  if (mode === 'rw') {
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!NOT_WRITABLE.has(code ?? '')) {
        throw new BlockBackendError('UNREADABLE', `${what}: cannot open ${path}: ${(e as Error).message}`);
      }
      readOnly = true;
      warning = notWritableWarning(what, path);
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

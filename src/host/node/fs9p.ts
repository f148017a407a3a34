/**
 * The host folder behind virtio-9p (-virtfs local,path=DIR,...): an
 * FsBackend over Node's synchronous fs calls that never reaches outside DIR.
 *
 * Containment, in layers:
 * - paths arrive relative, without '.', '..' or empty components (the device
 *   resolves those), and are checked again here;
 * - before every call, the directory holding the last component is resolved
 *   with realpath and must still be DIR or below it, so a directory the host
 *   (or an earlier guest rename) replaced with a symlink to elsewhere is
 *   refused with EACCES;
 * - the last component is never followed: lstat, O_NOFOLLOW on open, lutimes,
 *   and chmod/truncate through a descriptor opened with O_NOFOLLOW. A symlink
 *   in the share therefore reaches the guest as a symlink, which the guest
 *   resolves in its own namespace, never on the host.
 * Files open with O_NONBLOCK, and anything but a regular file is refused at
 * open, so a FIFO or device node in the share cannot hang the VM.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, ftruncateSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmdirSync, statfsSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { Errno, FsError, LinuxOpen, type FsBackend, type FsStat } from '../../devices/backends.js';

const ERRNO: Record<string, number> = {
  EPERM: Errno.EPERM, ENOENT: Errno.ENOENT, EIO: Errno.EIO, EBADF: Errno.EBADF, EACCES: Errno.EACCES, EBUSY: Errno.EBUSY,
  EEXIST: Errno.EEXIST, EXDEV: Errno.EXDEV, ENOTDIR: Errno.ENOTDIR, EISDIR: Errno.EISDIR, EINVAL: Errno.EINVAL,
  EMFILE: Errno.EMFILE, ENFILE: Errno.EMFILE, EFBIG: Errno.EFBIG, ENOSPC: Errno.ENOSPC, EROFS: Errno.EROFS,
  ENAMETOOLONG: Errno.ENAMETOOLONG, ENOTEMPTY: Errno.ENOTEMPTY, ELOOP: Errno.ELOOP, EOPNOTSUPP: Errno.EOPNOTSUPP,
  ENOTSUP: Errno.EOPNOTSUPP, EAGAIN: Errno.EIO,
};

export class ShareError extends Error {}

function fail(e: unknown): never {
  if (e instanceof FsError) throw e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  throw new FsError(ERRNO[code] ?? Errno.EIO, (e as Error).message);
}

function toStat(s: Stats): FsStat {
  const sec = (ms: number) => Math.floor(ms / 1000);
  const nsec = (ms: number) => Math.round((ms % 1000) * 1e6);
  return {
    mode: s.mode, ino: s.ino, nlink: s.nlink, uid: s.uid, gid: s.gid, rdev: s.rdev, size: s.size, blksize: s.blksize, blocks: s.blocks,
    atimeSec: sec(s.atimeMs), atimeNsec: nsec(s.atimeMs), mtimeSec: sec(s.mtimeMs), mtimeNsec: nsec(s.mtimeMs), ctimeSec: sec(s.ctimeMs), ctimeNsec: nsec(s.ctimeMs),
  };
}

/** Node's open flags for the guest's Linux flags (only the ones that mean something for a shared file). */
function nodeFlags(f: number): number {
  const acc = f & LinuxOpen.ACCMODE;
  let n = acc === LinuxOpen.WRONLY ? constants.O_WRONLY : acc === LinuxOpen.RDWR ? constants.O_RDWR : constants.O_RDONLY;
  if (f & LinuxOpen.CREAT) n |= constants.O_CREAT;
  if (f & LinuxOpen.EXCL) n |= constants.O_EXCL;
  if (f & LinuxOpen.TRUNC) n |= constants.O_TRUNC;
  if (f & LinuxOpen.APPEND) n |= constants.O_APPEND;
  return n | constants.O_NOFOLLOW | constants.O_NONBLOCK;
}

export class HostShare implements FsBackend {
  /** The shared folder, symlinks resolved once at start. */
  readonly root: string;
  private readonly _open = new Set<number>();

  constructor(
    dir: string,
    readonly readOnly: boolean,
  ) {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch (e) {
      throw new ShareError(`cannot share ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
    }
    if (!lstatSync(real).isDirectory()) throw new ShareError(`cannot share ${dir}: not a directory`);
    this.root = real;
  }

  /** The host path of a share path, after checking that its directory is still inside the share. */
  private _path(rel: string): string {
    if (rel === '') return this.root;
    const parts = rel.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) throw new FsError(Errno.EINVAL, `bad path ${rel}`);
    const parent = parts.length > 1 ? `${this.root}/${parts.slice(0, -1).join('/')}` : this.root;
    let real: string;
    try {
      real = realpathSync(parent);
    } catch (e) {
      fail(e);
    }
    if (real !== this.root && !real.startsWith(this.root + '/')) throw new FsError(Errno.EACCES, `${rel} leads outside the share`);
    return `${real}/${parts[parts.length - 1]}`;
  }

  private _ro(): void {
    if (this.readOnly) throw new FsError(Errno.EROFS);
  }

  private _fd(h: number): number {
    if (!this._open.has(h)) throw new FsError(Errno.EBADF);
    return h;
  }

  lstat(rel: string): FsStat {
    try {
      return toStat(lstatSync(this._path(rel)));
    } catch (e) {
      fail(e);
    }
  }

  readdir(rel: string): string[] {
    try {
      const p = this._path(rel);
      const real = realpathSync(p);
      if (real !== this.root && !real.startsWith(this.root + '/')) throw new FsError(Errno.EACCES);
      return readdirSync(real);
    } catch (e) {
      fail(e);
    }
  }

  private _openFd(rel: string, flags: number, mode?: number): number {
    if ((flags & LinuxOpen.ACCMODE) !== 0 || flags & (LinuxOpen.TRUNC | LinuxOpen.CREAT)) this._ro();
    try {
      const fd = openSync(this._path(rel), nodeFlags(flags), mode);
      if (!fstatSync(fd).isFile()) {
        closeSync(fd);
        throw new FsError(Errno.EPERM, `${rel} is not a regular file`);
      }
      this._open.add(fd);
      return fd;
    } catch (e) {
      fail(e);
    }
  }

  open(rel: string, flags: number): number {
    return this._openFd(rel, flags & ~(LinuxOpen.CREAT | LinuxOpen.EXCL));
  }

  create(rel: string, flags: number, mode: number): number {
    return this._openFd(rel, flags | LinuxOpen.CREAT, mode);
  }

  close(h: number): void {
    this._open.delete(h);
    try {
      closeSync(h);
    } catch (e) {
      fail(e);
    }
  }

  read(h: number, pos: number, dst: Uint8Array): number {
    try {
      return readSync(this._fd(h), dst, 0, dst.length, pos);
    } catch (e) {
      fail(e);
    }
  }

  write(h: number, pos: number, src: Uint8Array): number {
    this._ro();
    try {
      return writeSync(this._fd(h), src, 0, src.length, pos);
    } catch (e) {
      fail(e);
    }
  }

  fsync(h: number): void {
    try {
      fsyncSync(this._fd(h));
    } catch (e) {
      fail(e);
    }
  }

  mkdir(rel: string, mode: number): void {
    this._ro();
    try {
      mkdirSync(this._path(rel), mode);
    } catch (e) {
      fail(e);
    }
  }

  symlink(target: string, rel: string): void {
    this._ro();
    try {
      symlinkSync(target, this._path(rel));
    } catch (e) {
      fail(e);
    }
  }

  link(existing: string, rel: string): void {
    this._ro();
    try {
      linkSync(this._path(existing), this._path(rel));
    } catch (e) {
      fail(e);
    }
  }

  readlink(rel: string): string {
    try {
      return readlinkSync(this._path(rel), 'utf8');
    } catch (e) {
      fail(e);
    }
  }

  rename(from: string, to: string): void {
    this._ro();
    try {
      renameSync(this._path(from), this._path(to));
    } catch (e) {
      fail(e);
    }
  }

  unlink(rel: string, dir: boolean): void {
    this._ro();
    if (rel === '') throw new FsError(Errno.EBUSY);
    try {
      if (dir) rmdirSync(this._path(rel));
      else {
        const p = this._path(rel);
        if (lstatSync(p).isDirectory()) throw new FsError(Errno.EISDIR);
        unlinkSync(p);
      }
    } catch (e) {
      fail(e);
    }
  }

  setattr(rel: string, a: { mode?: number; size?: number; atime?: [number, number]; mtime?: [number, number] }): void {
    this._ro();
    try {
      const p = this._path(rel);
      const isLink = lstatSync(p).isSymbolicLink();
      if (a.mode !== undefined && !isLink) {
        const fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          fchmodSync(fd, a.mode);
        } finally {
          closeSync(fd);
        }
      }
      if (a.size !== undefined) {
        if (isLink) throw new FsError(Errno.EINVAL);
        const fd = openSync(p, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          if (!fstatSync(fd).isFile()) throw new FsError(Errno.EINVAL);
          ftruncateSync(fd, a.size);
        } finally {
          closeSync(fd);
        }
      }
      if (a.atime || a.mtime) {
        const st = lstatSync(p);
        const now = Date.now() / 1000;
        const t = (v: [number, number] | undefined, cur: number) => (v === undefined ? cur / 1000 : v[0] < 0 ? now : v[0] + v[1] / 1e9);
        lutimesSync(p, t(a.atime, st.atimeMs), t(a.mtime, st.mtimeMs));
      }
    } catch (e) {
      fail(e);
    }
  }

  statfs(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namelen: number } {
    try {
      const s = statfsSync(this.root);
      return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namelen: 255 };
    } catch (e) {
      fail(e);
    }
  }

  /** Close every file still open (the VM stopped). */
  closeAll(): void {
    for (const fd of this._open) {
      try {
        closeSync(fd);
      } catch {
        // already gone
      }
    }
    this._open.clear();
  }
}

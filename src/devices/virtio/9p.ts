/**
 * virtio-9p: a host folder shared with the guest over 9P2000.L, the dialect
 * Linux's v9fs speaks (`mount -t 9p -o trans=virtio TAG /mnt`). One request
 * queue; each chain holds a T-message (readable) and room for the R-message
 * (writable). The configuration space holds the mount tag.
 *
 * The device parses messages and keeps the fid table (fid -> path relative
 * to the share root, plus an open handle); the file system behind it is an
 * FsBackend (src/host/node/fs9p.ts on Node), which owns containment. The
 * device resolves '.' and '..' itself and never lets '..' climb above the
 * root; names with '/' or NUL are refused. Walking out of a non-directory
 * (a symlink included) fails, so a symlink is only ever resolved by the
 * guest, inside the guest's own namespace.
 *
 * Messages served: version, attach, walk, clunk, remove, flush, lopen,
 * lcreate, read, write, readdir, getattr, setattr, statfs, fsync, mkdir,
 * symlink, link, readlink, rename, renameat, unlinkat, lock, getlock,
 * xattrwalk (no xattrs: EOPNOTSUPP). Anything else gets Rlerror(ENOSYS).
 *
 * Reference: the 9P2000.L protocol description (diod's protocol.md) and
 * Linux's include/net/9p/9p.h for message numbers.
 */
import { utf8Decode, utf8Encode } from '../../base/utf8.js';
import { Errno, FsError, LinuxOpen, type FsBackend, type FsStat } from '../backends.js';
import { StateError, type StateObject } from '../../state/state.js';
import { i32s, str, u32, u32s } from '../../state/schema.js';
import { put16, VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain, VirtioError } from './queue.js';

const enum T {
  LERROR = 7,
  STATFS = 8,
  LOPEN = 12,
  LCREATE = 14,
  SYMLINK = 16,
  MKNOD = 18,
  RENAME = 20,
  READLINK = 22,
  GETATTR = 24,
  SETATTR = 26,
  XATTRWALK = 30,
  XATTRCREATE = 32,
  READDIR = 40,
  FSYNC = 50,
  LOCK = 52,
  GETLOCK = 54,
  LINK = 70,
  MKDIR = 72,
  RENAMEAT = 74,
  UNLINKAT = 76,
  VERSION = 100,
  AUTH = 102,
  ATTACH = 104,
  FLUSH = 108,
  WALK = 110,
  READ = 116,
  WRITE = 118,
  CLUNK = 120,
  REMOVE = 122,
}

const enum Qt {
  DIR = 0x80,
  SYMLINK = 0x02,
  FILE = 0,
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const AT_REMOVEDIR = 0x200;
const HEADER = 7;
/** Largest message either way; the guest may ask for less in Tversion. */
export const P9_MAX_MSIZE = 512 * 1024;
const MIN_MSIZE = 4096;
/** Open files and walked fids one guest may hold (bounds host descriptors and memory). */
export const P9_MAX_FIDS = 4096;
const MAX_WALK = 16;
const MAX_NAME = 255;
const NO_FID = 0xffffffff;
const P9_GETATTR_BASIC = 0x7ff;
const SETATTR = { MODE: 0x1, SIZE: 0x8, ATIME: 0x10, MTIME: 0x20, ATIME_SET: 0x80, MTIME_SET: 0x100 };
const VIRTIO_9P_MOUNT_TAG = 0;

interface Fid {
  path: string;
  /** Backend handle while open (-1 when not). */
  handle: number;
  flags: number;
  /** A directory listing taken at the readdir with offset 0. */
  dir: string[] | null;
}

/** The fid table as the state holds it: fid numbers, open flags (-1: not open, -2: a directory being listed) and paths (a JSON list), in parallel. */
interface FidTable {
  fids: Uint32Array;
  flags: Int32Array;
  paths: string;
}

/** Reads a T-message. Running off its end throws (an EINVAL reply, not a crash). */
class Reader {
  pos = HEADER;
  constructor(readonly b: Uint8Array) {}
  private _need(n: number): void {
    if (this.pos + n > this.b.length) throw new FsError(Errno.EINVAL, 'message too short');
  }
  u8(): number {
    this._need(1);
    return this.b[this.pos++];
  }
  u16(): number {
    this._need(2);
    const v = this.b[this.pos] | (this.b[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this._need(4);
    const b = this.b;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi * 0x1_0000_0000 + lo;
  }
  str(): string {
    const n = this.u16();
    this._need(n);
    const s = utf8Decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  bytes(n: number): Uint8Array {
    this._need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

/** Builds an R-message into a buffer of msize bytes. */
class Writer {
  pos = HEADER;
  constructor(readonly b: Uint8Array) {}
  private _room(n: number): void {
    if (this.pos + n > this.b.length) throw new FsError(Errno.EINVAL, 'reply larger than msize');
  }
  u8(v: number): this {
    this._room(1);
    this.b[this.pos++] = v;
    return this;
  }
  u16(v: number): this {
    this._room(2);
    put16(this.b, this.pos, v);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this._room(4);
    const b = this.b;
    b[this.pos] = v & 0xff;
    b[this.pos + 1] = (v >>> 8) & 0xff;
    b[this.pos + 2] = (v >>> 16) & 0xff;
    b[this.pos + 3] = (v >>> 24) & 0xff;
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    const x = Math.max(0, Math.floor(v));
    return this.u32(x >>> 0).u32(Math.floor(x / 0x1_0000_0000) >>> 0);
  }
  str(s: string): this {
    const e = utf8Encode(s);
    this._room(2 + e.length);
    this.u16(e.length);
    this.b.set(e, this.pos);
    this.pos += e.length;
    return this;
  }
  qid(st: FsStat): this {
    const t = st.mode & S_IFMT;
    return this.u8(t === S_IFDIR ? Qt.DIR : t === S_IFLNK ? Qt.SYMLINK : Qt.FILE)
      .u32(st.mtimeSec >>> 0)
      .u64(st.ino);
  }
}

export class Virtio9p implements VirtioDevice {
  readonly type = VirtioId.NINEP;
  readonly queueCount = 1;
  readonly features: readonly [number, number] = [1 << VIRTIO_9P_MOUNT_TAG, 0];
  readonly config: Uint8Array;
  private _host!: VirtioHost;
  private readonly _chain = new Chain();
  private _msize = P9_MAX_MSIZE;
  private readonly _fids = new Map<number, Fid>();
  private readonly _out = new Uint8Array(P9_MAX_MSIZE);

  constructor(
    readonly id: string,
    readonly tag: string,
    private readonly _fs: FsBackend,
  ) {
    const t = utf8Encode(tag);
    if (t.length === 0 || t.length > 31) throw new RangeError(`${id}: a mount tag has 1-31 bytes`);
    this.config = new Uint8Array(2 + t.length);
    put16(this.config, 0, t.length);
    this.config.set(t, 2);
  }

  attach(host: VirtioHost): void {
    this._host = host;
  }

  notify(q: number): void {
    const h = this._host;
    const queue = h.queues[q];
    const c = this._chain;
    let any = false;
    while (queue.pop(h.ram, c)) {
      if (c.readBytes < HEADER || c.writeBytes < HEADER) throw new VirtioError(`${this.id}: request without room for a 9P header`);
      const msg = c.readAll(h.ram, this._msize);
      const n = this.handle(msg, Math.min(c.writeBytes, this._msize));
      queue.push(h.ram, c.head, c.write(h.ram, 0, this._out.subarray(0, n)));
      any = true;
    }
    if (any) h.used(queue);
  }

  /** Serve one T-message; the reply is in the first returned bytes of `_out`. Exposed for tests. */
  handle(msg: Uint8Array, room: number): number {
    const type = msg[4];
    const tag = msg[5] | (msg[6] << 8);
    const w = new Writer(this._out.subarray(0, Math.max(HEADER + 4, room)));
    let rtype = type + 1;
    try {
      const size = (msg[0] | (msg[1] << 8) | (msg[2] << 16) | (msg[3] << 24)) >>> 0;
      const r = new Reader(msg.subarray(0, Math.min(size, msg.length)));
      this._dispatch(type, r, w);
    } catch (e) {
      rtype = T.LERROR;
      w.pos = HEADER;
      w.u32(e instanceof FsError ? e.errno : Errno.EIO);
    }
    const b = this._out;
    const n = w.pos;
    b[0] = n & 0xff;
    b[1] = (n >>> 8) & 0xff;
    b[2] = (n >>> 16) & 0xff;
    b[3] = (n >>> 24) & 0xff;
    b[4] = rtype;
    put16(b, 5, tag);
    return n;
  }

  // ---- fids and paths ----

  private _fid(n: number): Fid {
    const f = this._fids.get(n);
    if (!f) throw new FsError(Errno.EBADF, `no fid ${n}`);
    return f;
  }

  private _newFid(n: number, path: string): Fid {
    if (n === NO_FID) throw new FsError(Errno.EBADF);
    const old = this._fids.get(n);
    if (old) this._closeFid(old);
    else if (this._fids.size >= P9_MAX_FIDS) throw new FsError(Errno.EMFILE);
    const f: Fid = { path, handle: -1, flags: 0, dir: null };
    this._fids.set(n, f);
    return f;
  }

  private _closeFid(f: Fid): void {
    if (f.handle >= 0) {
      try {
        this._fs.close(f.handle);
      } catch {
        // the host could not close it; the guest cannot do anything about that
      }
    }
    f.handle = -1;
    f.dir = null;
  }

  /** A name the guest gives for a new or existing entry in a directory. */
  private _name(name: string): string {
    if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError(Errno.EINVAL, `bad name '${name}'`);
    if (name.length > MAX_NAME) throw new FsError(Errno.ENAMETOOLONG);
    return name;
  }

  private _join(dir: string, name: string): string {
    return dir === '' ? name : `${dir}/${name}`;
  }

  private _isDir(st: FsStat): boolean {
    return (st.mode & S_IFMT) === S_IFDIR;
  }

  private _writable(): void {
    if (this._fs.readOnly) throw new FsError(Errno.EROFS);
  }

  // ---- messages ----

  private _dispatch(type: number, r: Reader, w: Writer): void {
    const fs = this._fs;
    switch (type) {
      case T.VERSION: {
        const msize = r.u32();
        const version = r.str();
        for (const f of this._fids.values()) this._closeFid(f);
        this._fids.clear();
        this._msize = Math.max(MIN_MSIZE, Math.min(msize, P9_MAX_MSIZE));
        w.u32(this._msize).str(version === '9P2000.L' ? '9P2000.L' : 'unknown');
        return;
      }
      case T.AUTH:
        throw new FsError(Errno.EOPNOTSUPP);
      case T.ATTACH: {
        const fid = r.u32();
        r.u32(); // afid
        r.str(); // uname
        r.str(); // aname: the share is the whole folder
        const st = fs.lstat('');
        this._newFid(fid, '');
        w.qid(st);
        return;
      }
      case T.FLUSH:
        r.u16(); // requests complete synchronously: nothing is in flight
        return;
      case T.WALK: {
        const fidNum = r.u32();
        const fid = this._fid(fidNum);
        const newfid = r.u32();
        const n = r.u16();
        if (n > MAX_WALK) throw new FsError(Errno.EINVAL);
        const names: string[] = [];
        for (let i = 0; i < n; i++) names.push(r.str());
        let path = fid.path;
        const qids: FsStat[] = [];
        let st = fs.lstat(path);
        for (const name of names) {
          if (!this._isDir(st)) break; // walking out of a file or a symlink: stop here
          let next: string;
          if (name === '..') next = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
          else if (name === '.') next = path;
          else {
            if (name.length === 0 || name.includes('/') || name.includes('\0')) break;
            next = this._join(path, name);
          }
          try {
            st = fs.lstat(next);
          } catch (e) {
            if (qids.length === 0) throw e;
            break;
          }
          qids.push(st);
          path = next;
        }
        if (n > 0 && qids.length === 0) throw new FsError(this._isDir(st) ? Errno.ENOENT : Errno.ENOTDIR);
        if (qids.length === n) {
          if (newfid === fidNum) {
            this._closeFid(fid);
            fid.path = path;
          } else this._newFid(newfid, path);
        }
        w.u16(qids.length);
        for (const q of qids) w.qid(q);
        return;
      }
      case T.CLUNK: {
        const n = r.u32();
        this._closeFid(this._fid(n));
        this._fids.delete(n);
        return;
      }
      case T.REMOVE: {
        const n = r.u32();
        const f = this._fid(n);
        this._closeFid(f);
        this._fids.delete(n);
        this._writable();
        if (f.path === '') throw new FsError(Errno.EBUSY);
        fs.unlink(f.path, this._isDir(fs.lstat(f.path)));
        return;
      }
      case T.LOPEN: {
        const f = this._fid(r.u32());
        const flags = r.u32();
        if (f.handle >= 0 || f.dir) throw new FsError(Errno.EBADF, 'fid already open');
        const st = fs.lstat(f.path);
        if (this._isDir(st)) {
          if ((flags & LinuxOpen.ACCMODE) !== 0) throw new FsError(Errno.EISDIR);
          f.dir = [];
        } else {
          if ((flags & LinuxOpen.ACCMODE) !== 0 || flags & LinuxOpen.TRUNC) this._writable();
          f.handle = fs.open(f.path, flags & ~(LinuxOpen.CREAT | LinuxOpen.EXCL));
          f.flags = flags;
        }
        w.qid(st).u32(this._msize - 24);
        return;
      }
      case T.LCREATE: {
        const f = this._fid(r.u32());
        const name = this._name(r.str());
        const flags = r.u32();
        const mode = r.u32();
        r.u32(); // gid: files belong to the host user (security_model=none)
        this._writable();
        if (!this._isDir(fs.lstat(f.path))) throw new FsError(Errno.ENOTDIR);
        const path = this._join(f.path, name);
        const handle = fs.create(path, flags | LinuxOpen.CREAT, mode & 0o7777);
        this._closeFid(f);
        f.path = path;
        f.handle = handle;
        f.flags = flags;
        w.qid(fs.lstat(path)).u32(this._msize - 24);
        return;
      }
      case T.READ: {
        const f = this._fid(r.u32());
        const off = r.u64();
        const count = Math.min(r.u32(), w.b.length - HEADER - 4);
        if (f.handle < 0) throw new FsError(Errno.EBADF);
        const at = w.pos + 4;
        const n = fs.read(f.handle, off, w.b.subarray(at, at + Math.max(0, count)));
        w.u32(n);
        w.pos += n;
        return;
      }
      case T.WRITE: {
        const f = this._fid(r.u32());
        const off = r.u64();
        const count = r.u32();
        const data = r.bytes(Math.min(count, r.b.length - r.pos));
        if (f.handle < 0 || (f.flags & LinuxOpen.ACCMODE) === 0) throw new FsError(Errno.EBADF);
        this._writable();
        w.u32(fs.write(f.handle, off, data));
        return;
      }
      case T.READDIR: {
        const f = this._fid(r.u32());
        const off = r.u64();
        const count = Math.min(r.u32(), w.b.length - HEADER - 4);
        if (!f.dir) throw new FsError(Errno.EBADF);
        if (off === 0) f.dir = ['.', '..', ...fs.readdir(f.path)];
        const start = w.pos;
        w.u32(0);
        const limit = start + 4 + count;
        for (let i = off; i < f.dir.length; i++) {
          const name = f.dir[i];
          const path = name === '.' ? f.path : name === '..' ? f.path.slice(0, Math.max(0, f.path.lastIndexOf('/'))) : this._join(f.path, name);
          let st: FsStat;
          try {
            st = fs.lstat(path);
          } catch {
            continue; // removed since the listing was taken
          }
          const bytes = utf8Encode(name).length;
          if (w.pos + 13 + 8 + 1 + 2 + bytes > limit) break;
          w.qid(st).u64(i + 1).u8(direntType(st.mode)).str(name);
        }
        const n = w.pos - start - 4;
        const end = w.pos;
        w.pos = start;
        w.u32(n);
        w.pos = end;
        return;
      }
      case T.GETATTR: {
        const f = this._fid(r.u32());
        r.u64(); // request mask: the basic set is always returned
        const st = fs.lstat(f.path);
        w.u64(P9_GETATTR_BASIC).qid(st).u32(st.mode).u32(st.uid).u32(st.gid).u64(st.nlink).u64(st.rdev).u64(st.size).u64(st.blksize).u64(st.blocks);
        w.u64(st.atimeSec).u64(st.atimeNsec).u64(st.mtimeSec).u64(st.mtimeNsec).u64(st.ctimeSec).u64(st.ctimeNsec);
        w.u64(0).u64(0).u64(0).u64(0); // btime, gen, data_version: not in the basic set
        return;
      }
      case T.SETATTR: {
        const f = this._fid(r.u32());
        const valid = r.u32();
        const mode = r.u32();
        r.u32(); // uid
        r.u32(); // gid: ownership changes are ignored (security_model=none)
        const size = r.u64();
        const atime: [number, number] = [r.u64(), r.u64()];
        const mtime: [number, number] = [r.u64(), r.u64()];
        const a: Parameters<FsBackend['setattr']>[1] = {};
        if (valid & SETATTR.MODE) a.mode = mode & 0o7777;
        if (valid & SETATTR.SIZE) a.size = size;
        // time "now" comes from the host clock in the backend (a file time is host data, not guest time)
        if (valid & SETATTR.ATIME) a.atime = valid & SETATTR.ATIME_SET ? atime : [-1, 0];
        if (valid & SETATTR.MTIME) a.mtime = valid & SETATTR.MTIME_SET ? mtime : [-1, 0];
        if (Object.keys(a).length) {
          this._writable();
          fs.setattr(f.path, a);
        }
        return;
      }
      case T.STATFS: {
        this._fid(r.u32());
        const s = fs.statfs();
        w.u32(0x01021997).u32(s.bsize).u64(s.blocks).u64(s.bfree).u64(s.bavail).u64(s.files).u64(s.ffree).u64(0).u32(s.namelen);
        return;
      }
      case T.FSYNC: {
        const f = this._fid(r.u32());
        if (f.handle >= 0) fs.fsync(f.handle);
        return;
      }
      case T.MKDIR: {
        const d = this._fid(r.u32());
        const name = this._name(r.str());
        const mode = r.u32();
        this._writable();
        const path = this._join(d.path, name);
        fs.mkdir(path, mode & 0o7777);
        w.qid(fs.lstat(path));
        return;
      }
      case T.SYMLINK: {
        const d = this._fid(r.u32());
        const name = this._name(r.str());
        const target = r.str();
        this._writable();
        if (target.length === 0 || target.includes('\0')) throw new FsError(Errno.EINVAL);
        const path = this._join(d.path, name);
        fs.symlink(target, path);
        w.qid(fs.lstat(path));
        return;
      }
      case T.LINK: {
        const d = this._fid(r.u32());
        const f = this._fid(r.u32());
        const name = this._name(r.str());
        this._writable();
        fs.link(f.path, this._join(d.path, name));
        return;
      }
      case T.READLINK: {
        const f = this._fid(r.u32());
        w.str(fs.readlink(f.path));
        return;
      }
      case T.RENAME: {
        const f = this._fid(r.u32());
        const d = this._fid(r.u32());
        const name = this._name(r.str());
        this._writable();
        if (f.path === '') throw new FsError(Errno.EINVAL);
        this._rename(f.path, this._join(d.path, name));
        return;
      }
      case T.RENAMEAT: {
        const od = this._fid(r.u32());
        const oname = this._name(r.str());
        const nd = this._fid(r.u32());
        const nname = this._name(r.str());
        this._writable();
        this._rename(this._join(od.path, oname), this._join(nd.path, nname));
        return;
      }
      case T.UNLINKAT: {
        const d = this._fid(r.u32());
        const name = this._name(r.str());
        const flags = r.u32();
        this._writable();
        fs.unlink(this._join(d.path, name), (flags & AT_REMOVEDIR) !== 0);
        return;
      }
      case T.LOCK:
        this._fid(r.u32());
        w.u8(0); // LOCK_SUCCESS: one guest, nothing to contend with
        return;
      case T.GETLOCK: {
        this._fid(r.u32());
        r.u8();
        const start = r.u64();
        const length = r.u64();
        const procId = r.u32();
        const client = r.str();
        w.u8(2).u64(start).u64(length).u32(procId).str(client); // F_UNLCK: nobody holds a lock
        return;
      }
      case T.XATTRWALK:
      case T.XATTRCREATE:
        throw new FsError(Errno.EOPNOTSUPP);
      case T.MKNOD:
        throw new FsError(Errno.EPERM);
      default:
        throw new FsError(Errno.ENOSYS);
    }
  }

  private _rename(from: string, to: string): void {
    if (to === from || to.startsWith(from + '/')) throw new FsError(Errno.EINVAL);
    this._fs.rename(from, to);
    // fids below the renamed path follow it, as the guest's dentries do
    for (const f of this._fids.values()) {
      if (f.path === from) f.path = to;
      else if (f.path.startsWith(from + '/')) f.path = to + f.path.slice(from.length);
    }
  }

  reset(): void {
    for (const f of this._fids.values()) this._closeFid(f);
    this._fids.clear();
    this._msize = P9_MAX_MSIZE;
  }

  /**
   * The declared state: the message size and the fid table, each fid's path
   * and open flags. Open files are reopened on load (a file the host removed
   * meanwhile leaves that fid closed, and the guest gets EBADF on it, as
   * after a server restart). The table is kept as a Map; its three parallel
   * lists are read from it, and the last one loaded (paths) rebuilds it.
   */
  readonly stateFields = {
    msize: u32.at('_msize').range(MIN_MSIZE, P9_MAX_MSIZE),
    fids: u32s(P9_MAX_FIDS)
      .upTo()
      .via((d: Virtio9p) => d._table().fids, (d: Virtio9p, v: Uint32Array) => (d._loading.fids = v)),
    flags: i32s(P9_MAX_FIDS)
      .upTo()
      .via((d: Virtio9p) => d._table().flags, (d: Virtio9p, v: Int32Array) => (d._loading.flags = v)),
    paths: str.via((d: Virtio9p) => d._table().paths, (d: Virtio9p, v: string) => d._loadTable(v)),
  };
  /** The host's open files are handles of this process; the lists of a table being loaded wait in _loading. */
  readonly stateTransient = ['tag', '_fs', '_chain', '_fids', '_out', '_loading'];
  private readonly _loading: { fids: Uint32Array<ArrayBufferLike>; flags: Int32Array<ArrayBufferLike> } = { fids: new Uint32Array(0), flags: new Int32Array(0) };

  private _table(): FidTable {
    const ids = [...this._fids.keys()];
    return {
      fids: new Uint32Array(ids),
      flags: new Int32Array(
        ids.map((i) => {
          const f = this._fids.get(i)!;
          return f.handle >= 0 ? f.flags : f.dir ? -2 : -1;
        }),
      ),
      paths: JSON.stringify(ids.map((i) => this._fids.get(i)!.path)),
    };
  }

  /** The table's lists must be parallel, the fids distinct, the paths relative and inside the share. */
  checkState(s: StateObject, where: string): void {
    const fids = s.fids as Uint32Array;
    const flags = s.flags as Int32Array;
    if (flags.length !== fids.length) throw new StateError(`${where}: fids and flags must be parallel lists`);
    if (new Set(fids).size !== fids.length) throw new StateError(`${where}: a fid appears twice`);
    if (flags.some((f) => f < -2)) throw new StateError(`${where}: a fid's open flags are below -2`);
    let paths: unknown;
    try {
      paths = JSON.parse(s.paths as string);
    } catch {
      throw new StateError(`${where}: paths is not a JSON list`);
    }
    if (!Array.isArray(paths) || paths.length !== fids.length || !paths.every((p) => typeof p === 'string' && !p.startsWith('/') && !p.split('/').some((c) => c === '..' || c === '.'))) {
      throw new StateError(`${where}: paths must be one relative path per fid`);
    }
  }

  /** Rebuild the fid table from a checked state (fids and flags arrived first), reopening the files that were open. */
  private _loadTable(pathsJson: string): void {
    const paths = JSON.parse(pathsJson) as string[];
    const { fids, flags } = this._loading;
    for (const f of this._fids.values()) this._closeFid(f);
    this._fids.clear();
    for (let i = 0; i < fids.length; i++) {
      const f: Fid = { path: paths[i], handle: -1, flags: 0, dir: flags[i] === -2 ? [] : null };
      if (flags[i] >= 0) {
        try {
          f.handle = this._fs.open(f.path, flags[i] & ~(LinuxOpen.CREAT | LinuxOpen.EXCL | LinuxOpen.TRUNC));
          f.flags = flags[i];
        } catch {
          f.handle = -1;
        }
      }
      this._fids.set(fids[i], f);
    }
    this._loading.fids = new Uint32Array(0);
    this._loading.flags = new Int32Array(0);
  }
}

/** The d_type of a directory entry (DT_DIR 4, DT_REG 8, DT_LNK 10, ...). */
function direntType(mode: number): number {
  return (mode & S_IFMT) >>> 12;
}

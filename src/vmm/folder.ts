/**
 * VM folders: a VM is one directory `NAME.tsvm/` that holds everything it
 * needs, with no absolute paths inside, so copying or moving the folder
 * moves the VM:
 *
 *   vm.json            versioned config: name, creation time, the MachineSpec
 *                      (paths relative to the folder)
 *   boot/              kernel, initrd, firmware copied in at creation
 *   disks/             the drives' images
 *   snapshots/         tree.json (the snapshot tree and the current position)
 *                      and per snapshot: <id>.snap (machine state) and
 *                      <id>.<disk>.qcow2 (frozen qcow2 images) or <id>.<disk>.img
 *                      (raw copies); <disk> is an IDE slot (hda, hdb) or a
 *                      virtio disk (vda, vdb, ...)
 *   suspended.snap     the state `quit --save` left; the next start resumes it
 *   vm.log             one line per event (created, started, stopped, snapshots)
 *   lock               held while a process has the VM open for writing
 *
 * A snapshot freezes a qcow2 disk and continues in a new overlay over it;
 * raw disks are copied whole (reflinked where the file system can); see
 * _saveDisks()/_restoreDisks() below.
 */
import { appendFileSync, closeSync, constants, copyFileSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { createQcow2File, qcow2Info, setQcow2BackingName } from '../host/node/qcow2file.js';
import { flushOpenDrive, reopenDrive } from './open-drives.js';
import { DRIVE_SLOTS, validateSpec, VmConfigError, type DriveFormat, type DriveMode, type DriveSlot, type MachineSpec } from './spec.js';
import { VmFolderError } from './errors.js';
import { writeFileAtomic } from './atomic.js';
import type { MachineStateSource } from './snapshot.js';

export const VM_SUFFIX = '.tsvm';
export const VM_FORMAT = 'tsvm-vm';
export const VM_VERSION = 1;
/** What a snapshot id may be (it names files in snapshots/): tsvm makes `s` and base-36 digits. */
const SNAPSHOT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TREE_VERSION = 1;

/** Progress of a long folder operation: `done` bytes of `total`. */
export type CopyProgress = (done: number, total: number) => void;

/** Empty disks a new VM folder gets, by slot (IDE, or `vda`: the first virtio-blk disk), in bytes. */
export type NewDisks = Partial<Record<DriveSlot | 'vda', number>>;

/** A VM folder problem (missing, locked, malformed); defined in errors.ts, which front ends load alone. */
export { VmFolderError };

export interface VmConfig {
  format: typeof VM_FORMAT;
  version: number;
  name: string;
  createdAt: string;
  /**
   * Where the guest's clock starts at each power-on, as QEMU's -rtc spells it
   * (base=utc, base=localtime, base=DATE); the front end turns it into the
   * spec's rtcEpochSec when it starts the VM. A resumed VM keeps its clock.
   */
  rtc: string;
  spec: MachineSpec;
}

export interface SnapshotNode {
  id: string;
  name: string;
  description: string;
  parent: string | null;
  createdAt: string;
  /**
   * Linked clones whose disks back onto this snapshot's images (name and
   * folder path relative to this VM's folder, as recorded at cloning): the
   * snapshot cannot be deleted while it has any.
   */
  sharedWith?: { name: string; path: string }[];
  /** Whether the machine's state was saved (a running VM), or only its disks (a stopped one). */
  hasState: boolean;
  guestSeconds: number;
  /** The text screen at the save, a few rows, as a thumbnail. */
  screen: string[] | null;
}

export interface SnapshotTree {
  version: number;
  /** The snapshot the VM's present state descends from (null: none yet). */
  current: string | null;
  /**
   * A revert in progress: set before the disks are put back, cleared after.
   * A process killed in between leaves it set, and the next lock() finishes
   * the revert, so the disks never stay half reverted.
   */
  reverting?: string | null;
  snapshots: SnapshotNode[];
}

/** A disk a snapshot holds: an IDE slot's (hda, hdb) or a virtio-blk disk's (vda, vdb, ... in their order). */
export type DiskKey = Exclude<DriveSlot, 'cdrom'> | `vd${string}`;

/** The spec entry of a disk: an IDE drive's or a virtio-blk device's (both mutable objects of the spec). */
interface DiskEntry {
  file: string;
  format: DriveFormat;
  mode: DriveMode;
}

/** The writable disks of a spec, by key: IDE hard disks first, then the virtio-blk disks as the guest names them. */
export function specDisks(spec: MachineSpec): { key: DiskKey; disk: DiskEntry }[] {
  const out: { key: DiskKey; disk: DiskEntry }[] = [];
  // the CD-ROM is read-only media: its image never changes, so snapshots do not copy it
  for (const s of ['hda', 'hdb'] as const) {
    const d = spec.drives[s];
    if (d) out.push({ key: s, disk: d });
  }
  let n = 0;
  for (const v of spec.virtio ?? []) if (v.type === 'blk') out.push({ key: `vd${String.fromCharCode(97 + n++)}`, disk: v });
  return out;
}

/** A VM name: letters, digits, dot, dash, underscore; no path separators. */
export function checkVmName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new VmFolderError(`'${name}' is not a VM name: use letters, digits, '.', '-' and '_' (up to 64), starting with a letter or digit`);
  }
}

/** The folder for NAME or a path: `NAME` -> DIR/NAME.tsvm; a path ending in .tsvm or holding vm.json is used as is. */
export function vmPath(nameOrPath: string, dir = process.cwd()): string {
  if (nameOrPath.endsWith(VM_SUFFIX) || nameOrPath.includes('/') || existsSync(join(resolve(dir, nameOrPath), 'vm.json'))) return resolve(dir, nameOrPath);
  return resolve(dir, nameOrPath + VM_SUFFIX);
}

/** The longest path vm.json may hold (Linux's PATH_MAX). */
const MAX_PATH_BYTES = 4096;

/** A path as an error message shows it: a long one cut short (a hostile vm.json may hold megabytes). */
function shown(p: string): string {
  return p.length <= 80 ? p : `${p.slice(0, 60)}... (${p.length} characters)`;
}

/** A relative path that stays inside the folder. */
function checkInside(subject: string, p: string): void {
  if (p.includes('\0')) throw new VmFolderError(`vm.json: ${subject} contains a NUL byte`);
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw new VmFolderError(`vm.json: ${subject} is a path longer than ${MAX_PATH_BYTES} bytes (${shown(p)})`);
  if (isAbsolute(p)) throw new VmFolderError(`vm.json: ${subject} is an absolute path (${shown(p)}); a VM folder refers to its files relative to itself`);
  const n = normalize(p);
  if (n === '..' || n.startsWith('..' + sep) || n.includes(`${sep}..${sep}`)) throw new VmFolderError(`vm.json: ${subject} (${shown(p)}) points outside the VM folder`);
}

/**
 * Why `p` (a path under the folder `root`, by name) would reach outside the
 * folder through a symlink, or null: the real path of `p`, or of its
 * nearest ancestor that exists, must be under the folder's real path; a
 * symlink that leads nowhere (dangling, a loop) is refused too, since
 * writing through it would create its target wherever it points.
 */
function symlinkEscape(realRoot: string, p: string): string | null {
  for (let q = p; ; ) {
    try {
      lstatSync(q);
    } catch {
      const up = dirname(q);
      if (up === q) return null;
      q = up;
      continue;
    }
    let real: string;
    try {
      real = realpathSync(q);
    } catch {
      return `goes through a symlink that leads nowhere (${shown(relative(realRoot, q) || q)})`;
    }
    const r = relative(realRoot, real);
    return r === '..' || r.startsWith('..' + sep) || isAbsolute(r) ? `leads outside the VM folder through a symlink (to ${shown(real)})` : null;
  }
}

/** What tsvm reads and writes in a folder by fixed name. */
const FOLDER_ENTRIES = ['vm.json', 'vm.log', 'lock', 'suspended.snap', 'boot', 'disks', 'snapshots', 'snapshots/tree.json'];

/**
 * Check that no file a VM folder's config names, and none of the folder's
 * own entries, leads outside it through a symlink: a folder from elsewhere
 * (unpacked from an archive, copied from another user) could otherwise make
 * the guest read or write any file the user can (a disk that is a symlink
 * to ~/.bashrc), or tsvm append its log to one.
 */
function checkSymlinks(path: string, spec: MachineSpec): void {
  const root = realpathSync(path);
  const check = (subject: string, rel: string) => {
    const why = symlinkEscape(root, join(root, rel));
    if (why) throw new VmFolderError(`vm.json: ${subject} (${shown(rel)}) ${why}`);
  };
  for (const e of FOLDER_ENTRIES) {
    const why = symlinkEscape(root, join(root, e));
    if (why) throw new VmFolderError(`${e} in the VM folder ${why}; a VM folder holds its own files`);
  }
  forSpecPaths(spec, check);
}

/** Call `f(subject, path)` for every file a spec names (by the field's name). */
function forSpecPaths(spec: MachineSpec, f: (subject: string, p: string) => void): void {
  if (spec.bios && spec.bios !== 'seabios') f('bios', spec.bios);
  if (spec.vgaBios && spec.vgaBios !== 'seabios') f('vgaBios', spec.vgaBios);
  if (spec.linux) {
    f('kernel', spec.linux.kernel);
    if (spec.linux.vmlinux) f('vmlinux', spec.linux.vmlinux);
    if (spec.linux.initrd) f('initrd', spec.linux.initrd);
  }
  for (const s of DRIVE_SLOTS) if (spec.drives[s]) f(s, (spec.drives[s] as { file: string }).file);
  (spec.virtio ?? []).forEach((v, i) => {
    if (v.type === 'blk') f(`virtio[${i}]`, v.file);
    else if (v.type === '9p') f(`virtio[${i}]`, v.path);
    else if (v.type === 'console') f(`virtio[${i}]`, v.chardev.slice(v.chardev.indexOf(':') + 1));
  });
  (spec.nics ?? []).forEach((n, i) => {
    if (n.dump) f(`nic ${i} dump`, n.dump);
  });
  for (const [k, v] of [['serial', spec.serial], ['debugcon', spec.debugcon], ['postcodes', spec.postcodes]] as const) {
    if (v?.startsWith('file:')) f(k, v.slice(5));
  }
}

/** Check every file reference of a spec stays inside the folder. */
function checkSpecPaths(spec: MachineSpec): void {
  forSpecPaths(spec, checkInside);
}

/** Validate vm.json's contents. */
export function validateVmConfig(json: unknown): VmConfig {
  if (typeof json !== 'object' || json === null) throw new VmFolderError('vm.json is not a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== VM_FORMAT) throw new VmFolderError(`vm.json is not a tsvm VM config (format is ${JSON.stringify(o.format)}, not "${VM_FORMAT}")`);
  if (o.version !== VM_VERSION) throw new VmFolderError(`vm.json is of version ${JSON.stringify(o.version)}; this tsvm reads version ${VM_VERSION}`);
  for (const k of Object.keys(o)) if (!['format', 'version', 'name', 'createdAt', 'rtc', 'spec'].includes(k)) throw new VmFolderError(`vm.json has an unknown field '${k}'`);
  if (typeof o.name !== 'string') throw new VmFolderError('vm.json: name must be a string');
  checkVmName(o.name);
  if (typeof o.createdAt !== 'string') throw new VmFolderError('vm.json: createdAt must be a string');
  const rtc = o.rtc ?? 'base=utc';
  if (typeof rtc !== 'string') throw new VmFolderError('vm.json: rtc must be a string such as base=utc');
  let spec: MachineSpec;
  try {
    spec = validateSpec(o.spec);
  } catch (e) {
    if (e instanceof VmConfigError) throw new VmFolderError(`vm.json: spec: ${e.message}`);
    throw e;
  }
  checkSpecPaths(spec);
  return { format: VM_FORMAT, version: VM_VERSION, name: o.name, createdAt: o.createdAt, rtc, spec };
}

/** Told the bytes of each file a long folder operation has copied, as it goes. */
export type Copied = (bytes: number) => void;

function copyFile(from: string, to: string, copied?: Copied): void {
  // a reflink (instant, shared until written) where the file system can, a copy otherwise
  copyFileSync(from, to, constants.COPYFILE_FICLONE);
  copied?.(statSync(to).size);
}

/**
 * A second name for a file no one writes (a linked clone's kernel, initrd,
 * CD image): a hard link, so the clone costs no copy whatever the file's
 * size; a copy where the file system refuses links (another device, no
 * links). Copying a folder with cp or rsync makes the files separate again.
 */
function linkOrCopy(from: string, to: string, copied?: Copied): void {
  try {
    linkSync(from, to);
  } catch {
    copyFile(from, to, copied);
  }
}

/** copyFile() through a temporary name, so `to` is either the old file or the whole new one. */
function copyAtomic(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  copyFile(from, tmp);
  renameSync(tmp, to);
}

/** An open VM folder. Methods that change it need the lock (lock()). */
export class VmFolder {
  readonly config: VmConfig;
  private _locked = false;

  private constructor(
    readonly path: string,
    config: VmConfig,
  ) {
    this.config = config;
  }

  /** Open an existing folder (validates vm.json). */
  static open(path: string): VmFolder {
    const cfgPath = join(path, 'vm.json');
    if (!existsSync(path)) throw new VmFolderError(`there is no VM at ${path} (create one with: tsvm create ${basename(path, VM_SUFFIX)})`);
    if (!existsSync(cfgPath)) throw new VmFolderError(`${path} is not a VM folder: it has no vm.json`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new VmFolderError(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
    }
    const config = validateVmConfig(json);
    checkSymlinks(path, config.spec);
    return new VmFolder(path, config);
  }

  /**
   * Create a folder from a spec whose file references are host paths: each
   * file is copied in (boot/, disks/) and the spec rewritten to refer to the
   * copies. `newDisks` creates empty (sparse) disks of the given sizes:
   * qcow2 for hard disks (an IDE slot, or `vda`: a virtio-blk disk placed
   * first among the virtio devices, so the guest names it /dev/vda), raw
   * for an empty CD-ROM.
   */
  static create(path: string, name: string, hostSpec: MachineSpec, newDisks: NewDisks = {}, rtc = 'base=utc', copied?: Copied): VmFolder {
    checkVmName(name);
    if (existsSync(path)) throw new VmFolderError(`${path} already exists; pick another name or remove it first`);
    const tmp = `${path}.creating-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, 'boot'), { recursive: true });
    mkdirSync(join(tmp, 'disks'));
    mkdirSync(join(tmp, 'snapshots'));
    try {
      const spec: MachineSpec = JSON.parse(JSON.stringify(hostSpec)) as MachineSpec;
      const take = (p: string, sub: string, as?: string): string => {
        const target = `${sub}/${as ?? basename(p)}`;
        copyFile(p, join(tmp, target), copied);
        return target;
      };
      if (spec.bios && spec.bios !== 'seabios') spec.bios = take(spec.bios, 'boot');
      if (spec.vgaBios && spec.vgaBios !== 'seabios') spec.vgaBios = take(spec.vgaBios, 'boot');
      if (spec.linux) {
        spec.linux.kernel = take(spec.linux.kernel, 'boot');
        if (spec.linux.vmlinux) spec.linux.vmlinux = take(spec.linux.vmlinux, 'boot');
        if (spec.linux.initrd) spec.linux.initrd = take(spec.linux.initrd, 'boot');
      }
      for (const slot of DRIVE_SLOTS) {
        const d = spec.drives[slot];
        const size = newDisks[slot];
        if (size !== undefined) {
          if (slot === 'cdrom') {
            const file = `disks/${slot}.img`;
            const fd = openSync(join(tmp, file), 'w');
            ftruncateSync(fd, size);
            closeSync(fd);
            spec.drives[slot] = { file, format: 'raw', mode: 'ro' };
          } else {
            // qcow2: snapshots become overlays rather than copies (see _saveDisks)
            const file = `disks/${slot}.qcow2`;
            createQcow2File(join(tmp, file), { size, renamedAfter: true });
            spec.drives[slot] = { file, format: 'qcow2', mode: 'rw' };
          }
        } else if (d) {
          d.file = take(d.file, 'disks', `${slot}${slot === 'cdrom' ? '.iso' : '.img'}`);
          if (d.mode === 'snapshot') d.mode = 'rw';
        }
      }
      let vd = 0;
      for (const v of spec.virtio ?? []) if (v.type === 'blk') v.file = take(v.file, 'disks', `vd${String.fromCharCode(97 + vd++)}${v.format === 'qcow2' ? '.qcow2' : '.img'}`);
      if (newDisks.vda !== undefined) {
        if (vd) throw new VmFolderError('a new virtio data disk goes first among the virtio disks, and this machine already has one');
        createQcow2File(join(tmp, 'disks/vda.qcow2'), { size: newDisks.vda, renamedAfter: true });
        spec.virtio = [{ type: 'blk', file: 'disks/vda.qcow2', format: 'qcow2', mode: 'rw' }, ...(spec.virtio ?? [])];
      }
      spec.serial = 'stdio';
      spec.debugcon = null;
      spec.postcodes = null;
      const config: VmConfig = { format: VM_FORMAT, version: VM_VERSION, name, createdAt: new Date().toISOString(), rtc, spec: validateSpec(spec) };
      checkSpecPaths(config.spec);
      writeFileSync(join(tmp, 'vm.json'), JSON.stringify(config, null, 2) + '\n');
      writeNewTree(tmp, { version: TREE_VERSION, current: null, snapshots: [] });
      appendFileSync(join(tmp, 'vm.log'), `${config.createdAt} created ${name}\n`);
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return VmFolder.open(path);
  }

  get name(): string {
    return this.config.name;
  }

  get spec(): MachineSpec {
    return this.config.spec;
  }

  /** Append a line to vm.log. */
  log(event: string): void {
    appendFileSync(join(this.path, 'vm.log'), `${new Date().toISOString()} ${event}\n`);
  }

  /**
   * Take the write lock: a `lock` file created exclusively, holding our pid.
   * A lock whose process is gone (killed) is taken over.
   */
  lock(): void {
    const p = join(this.path, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(p, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        this._locked = true;
        this._finishRevert();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new VmFolderError(`cannot lock ${this.path}: ${(e as Error).message}`);
        const pid = Number(readFileSync(p, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
          throw new VmFolderError(`VM ${this.name} is in use by another tsvm process (pid ${pid}); stop it first`);
        }
        unlinkSync(p); // left by a process that died
      }
    }
    throw new VmFolderError(`cannot lock ${this.path}`);
  }

  unlock(): void {
    if (!this._locked) return;
    this._locked = false;
    try {
      unlinkSync(join(this.path, 'lock'));
    } catch {
      // already gone
    }
  }

  /** The pid holding the lock, or null. */
  lockedBy(): number | null {
    try {
      const pid = Number(readFileSync(join(this.path, 'lock'), 'utf8').trim());
      return Number.isInteger(pid) && processAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  /** Throw unless this process holds the lock (lock()): for the methods (and revert.ts's functions) that change the folder. */
  needLock(): void {
    if (!this._locked) throw new Error('VmFolder: this operation needs the lock');
  }

  tree(): SnapshotTree {
    const p = join(this.path, 'snapshots', 'tree.json');
    let t: SnapshotTree;
    try {
      t = JSON.parse(readFileSync(p, 'utf8')) as SnapshotTree;
    } catch (e) {
      throw new VmFolderError(`${p} cannot be read: ${(e as Error).message}`);
    }
    if (t?.version !== TREE_VERSION || !Array.isArray(t.snapshots)) throw new VmFolderError(`${p} is not a snapshot tree of version ${TREE_VERSION}`);
    // ids become file names in snapshots/: a damaged or hostile tree must not name files elsewhere
    const bad = (why: string) => new VmFolderError(`${p} is damaged: ${why}`);
    const ids = new Set<string>();
    for (const n of t.snapshots as unknown[]) {
      if (typeof n !== 'object' || n === null) throw bad('a snapshot entry is not an object');
      const o = n as Record<string, unknown>;
      if (typeof o.id !== 'string' || !SNAPSHOT_ID.test(o.id)) throw bad(`snapshot id ${JSON.stringify(o.id)} is not letters and digits`);
      if (ids.has(o.id)) throw bad(`snapshot id ${o.id} appears twice`);
      ids.add(o.id);
      if (typeof o.name !== 'string') throw bad(`snapshot ${o.id} has no name`);
      if (typeof o.hasState !== 'boolean') throw bad(`snapshot ${o.id}'s hasState is not true or false`);
      if (o.sharedWith !== undefined && (!Array.isArray(o.sharedWith) || !o.sharedWith.every((x: unknown) => typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' && typeof (x as { path?: unknown }).path === 'string'))) {
        throw bad(`snapshot ${o.id}'s sharedWith is not a list of clones`);
      }
    }
    for (const n of t.snapshots) if (n.parent !== null && !ids.has(n.parent)) throw bad(`snapshot ${n.id}'s parent ${JSON.stringify(n.parent)} is not in the tree`);
    for (const [k, v] of [['current', t.current], ['reverting', t.reverting ?? null]] as const) {
      if (v !== null && (typeof v !== 'string' || !ids.has(v))) throw bad(`${k} ${JSON.stringify(v)} is not a snapshot in the tree`);
    }
    return t;
  }

  find(tag: string): SnapshotNode {
    const t = this.tree();
    const n = t.snapshots.find((s) => s.name === tag) ?? t.snapshots.find((s) => s.id === tag);
    if (!n) throw new VmFolderError(`VM ${this.name} has no snapshot '${tag}' (tsvm snapshot ${this.name} list shows them)`);
    return n;
  }

  /** The suspended state `quit --save` left, if any. */
  suspendedPath(): string | null {
    const p = join(this.path, 'suspended.snap');
    return existsSync(p) ? p : null;
  }

  private _snapFile(id: string, ext: string): string {
    return join(this.path, 'snapshots', `${id}.${ext}`);
  }

  private _diskSlots(): DiskKey[] {
    return specDisks(this.spec).map((d) => d.key);
  }

  private _disk(s: DiskKey): DiskEntry {
    const d = specDisks(this.spec).find((x) => x.key === s);
    if (!d) throw new VmFolderError(`VM ${this.name} has no disk ${s}`);
    return d.disk;
  }

  private _diskFile(s: DiskKey): string {
    return join(this.path, this._disk(s).file);
  }

  private _isQcow2(s: DiskKey): boolean {
    return this._disk(s).format === 'qcow2';
  }

  /** The machine state of snapshot `id` (one with hasState): snapshots/<id>.snap. */
  snapshotFile(id: string): string {
    return this._snapFile(id, 'snap');
  }

  /** The image holding disk `s` of snapshot `id`: a frozen qcow2 image, or a raw copy. */
  snapshotImage(id: string, s: DiskKey): string {
    return this._snapFile(id, this._isQcow2(s) ? `${s}.qcow2` : `${s}.img`);
  }

  /**
   * Put a new, empty overlay over `backing` in place of slot s's disk: built
   * under a temporary name, synced, renamed over the disk (so the disk is
   * always a whole image), then reopened behind a running machine's device.
   */
  private _newOverlay(s: DiskKey, backing: string): void {
    const disk = this._diskFile(s);
    const info = qcow2Info(backing);
    if (!info) throw new VmFolderError(`${backing} is not a qcow2 image`);
    const tmp = `${disk}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    createQcow2File(tmp, { size: info.size, backingFile: relative(dirname(disk), backing), backingFormat: 'qcow2', renamedAfter: true });
    renameSync(tmp, disk);
    reopenDrive(disk);
  }

  /**
   * The disks of a new snapshot. A qcow2 disk is frozen: the current image
   * gets a second name, the snapshot's (a hard link: no data copied), and a
   * new empty overlay over it takes the disk's name, so the frozen image is
   * never written again. A kill in between leaves either the old disk or an
   * overlay over the same contents; an image the tree does not name is
   * swept by _sweep(). Raw disks are copied (reflinked where possible).
   */
  private _saveDisks(id: string, copied?: (bytes: number) => void): void {
    for (const s of this._diskSlots()) {
      const disk = this._diskFile(s);
      const img = this.snapshotImage(id, s);
      if (!this._isQcow2(s)) {
        copyFile(disk, img, copied);
        continue;
      }
      flushOpenDrive(disk);
      rmSync(img, { force: true });
      linkSync(disk, img);
      this._newOverlay(s, img);
    }
  }

  /**
   * Put a snapshot's disks back: for qcow2, a new empty overlay over the
   * snapshot's image (the old overlay is dropped); for raw, a copy, in place
   * (same inode) for a running machine, whose open disk must see it.
   * Either way tree.json says `reverting` until it is done (see
   * SnapshotTree.reverting).
   */
  private _restoreDisks(id: string, inPlace: boolean): void {
    const t = this.tree();
    t.reverting = id;
    writeTree(this.path, t);
    for (const s of this._diskSlots()) {
      const from = this.snapshotImage(id, s);
      const to = this._diskFile(s);
      if (this._isQcow2(s)) this._newOverlay(s, from);
      else if (inPlace) writeFileSync(to, readFileSync(from));
      else copyAtomic(from, to);
    }
  }

  /**
   * Remove snapshot images nothing needs: an image stays while the tree
   * names it or any image still in use (a disk, a kept snapshot image)
   * backs onto it, directly or down its chain. Linked clones back onto
   * shared snapshots, which the tree keeps.
   */
  private _sweep(): void {
    const dir = join(this.path, 'snapshots');
    const keep = new Set<string>();
    const t = this.tree();
    const roots: string[] = [];
    for (const s of this._diskSlots()) {
      if (!this._isQcow2(s)) continue;
      roots.push(this._diskFile(s));
      for (const n of t.snapshots) roots.push(this.snapshotImage(n.id, s));
    }
    for (let p of roots) {
      for (let depth = 0; depth < 64 && existsSync(p); depth++) {
        keep.add(resolve(p));
        const b = qcow2Info(p)?.backingFile;
        if (!b) break;
        p = resolve(dirname(p), b);
      }
    }
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.qcow2') && !keep.has(resolve(dir, f))) rmSync(join(dir, f), { force: true });
    }
  }

  /** Finish a revert a killed process left half done (tree.json's `reverting`). */
  private _finishRevert(): void {
    const t = this.tree();
    if (!t.reverting) return;
    const node = t.snapshots.find((s) => s.id === t.reverting);
    if (node) {
      this._restoreDisks(node.id, false);
      const sus = join(this.path, 'suspended.snap');
      if (node.hasState) copyAtomic(this._snapFile(node.id, 'snap'), sus);
      else rmSync(sus, { force: true });
    }
    const t2 = this.tree();
    t2.current = node ? node.id : t2.current;
    t2.reverting = null;
    writeTree(this.path, t2);
    this.log(`finished an interrupted revert${node ? ` to ${node.name}` : ''}`);
  }

  /**
   * Save a snapshot named `tag`: the machine's state when `state` is given
   * (a running VM: snapshot.ts's machineState(); call between slices), else
   * the suspended state if there is one, and always the disks. Returns the node.
   * `progress` hears the bytes done of the total: the RAM encoded (or the
   * suspended state copied), then the raw disks copied (a qcow2 disk costs
   * no copy: it becomes the snapshot's image under a new overlay).
   * `shareWith` records a linked clone about to be made of the snapshot
   * (markShared()) in the same write of tree.json.
   */
  saveSnapshot(tag: string, description: string, state: MachineStateSource | null, progress?: CopyProgress, shareWith?: { name: string; clonePath: string }): SnapshotNode {
    this.needLock();
    if (!/^[^\s/]{1,64}$/.test(tag)) throw new VmFolderError(`'${tag}' is not a snapshot name: up to 64 characters, no spaces or '/'`);
    const t = this.tree();
    if (t.snapshots.some((s) => s.name === tag)) throw new VmFolderError(`VM ${this.name} already has a snapshot '${tag}'; delete it first or pick another name`);
    const id = `s${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    let guestSeconds = 0;
    let screen: string[] | null = null;
    let hasState = false;
    const sus = state ? null : this.suspendedPath();
    const stateBytes = state ? state.ramBytes : sus ? statSync(sus).size : 0;
    const rawDisks = this._diskSlots().filter((s) => !this._isQcow2(s));
    const total = stateBytes + rawDisks.reduce((n, s) => n + statSync(this._diskFile(s)).size, 0);
    let done = 0;
    const tell = progress ? (d: number) => progress(Math.min(d, total), total) : undefined;
    tell?.(0);
    if (state) {
      const bytes = state.encode({ name: tag, description }, tell && ((ram) => tell(Math.min(ram, stateBytes))));
      writeFileAtomic(this._snapFile(id, 'snap'), bytes);
      guestSeconds = state.guestSeconds;
      screen = state.screen;
      hasState = true;
    } else if (sus) {
      copyAtomic(sus, this._snapFile(id, 'snap'));
      hasState = true;
    }
    done = stateBytes;
    tell?.(done);
    this._saveDisks(id, tell && ((bytes) => tell((done += bytes))));
    const node: SnapshotNode = { id, name: tag, description, parent: t.current, createdAt: new Date().toISOString(), hasState, guestSeconds, screen };
    if (shareWith) node.sharedWith = [{ name: shareWith.name, path: relative(this.path, shareWith.clonePath) }];
    t.snapshots.push(node);
    t.current = id;
    writeTree(this.path, t);
    this.log(`snapshot saved: ${tag}${hasState ? '' : ' (disks only)'}`);
    if (shareWith) this.log(`snapshot ${tag} shared with linked clone ${shareWith.name}`);
    return node;
  }

  /** Record that the linked clone at `clonePath` backs onto snapshot `id` (deleteSnapshot refuses it then). */
  markShared(id: string, name: string, clonePath: string): void {
    this.needLock();
    const t = this.tree();
    const n = t.snapshots.find((x) => x.id === id);
    if (!n) throw new VmFolderError(`VM ${this.name} has no snapshot ${id}`);
    n.sharedWith = [...(n.sharedWith ?? []), { name, path: relative(this.path, clonePath) }];
    writeTree(this.path, t);
    this.log(`snapshot ${n.name} shared with linked clone ${name}`);
  }

  /** The linked clones still in place whose disks back onto `node` (all snapshots when none is given). */
  linkedClones(node?: SnapshotNode): { name: string; path: string }[] {
    const nodes = node ? [node] : this.tree().snapshots;
    return nodes.flatMap((n) => n.sharedWith ?? []).filter((x) => existsSync(join(resolve(this.path, x.path), 'vm.json')));
  }

  /** Whether a disk's backing chain leaves the folder (the VM is a linked clone). */
  backsOutside(): string | null {
    for (const s of this._diskSlots()) {
      if (!this._isQcow2(s)) continue;
      let p = this._diskFile(s);
      for (let depth = 0; depth < 64 && existsSync(p); depth++) {
        const b = qcow2Info(p)?.backingFile;
        if (!b) break;
        p = resolve(dirname(p), b);
        const r = relative(this.path, p);
        if (r.startsWith('..') || isAbsolute(r)) return p;
      }
    }
    return null;
  }

  /**
   * The files part of a revert to `node`: the disks put back (in place, for
   * a running machine, whose open disks must see it), for a stopped VM the
   * snapshot's state as the suspended state (or none), then `current` moved
   * and images nothing reaches swept. revertSnapshot() (revert.ts) calls it
   * once it has checked the snapshot's state file and disk images and loaded
   * a running machine's state; call that, not this.
   */
  revertFiles(node: SnapshotNode, running: boolean, tag = node.name): void {
    this.needLock();
    if (running) {
      this._restoreDisks(node.id, true);
    } else {
      this._restoreDisks(node.id, false);
      const sus = join(this.path, 'suspended.snap');
      if (node.hasState) copyAtomic(this._snapFile(node.id, 'snap'), sus);
      else rmSync(sus, { force: true });
    }
    const t = this.tree();
    t.current = node.id;
    t.reverting = null;
    writeTree(this.path, t);
    this._sweep();
    this.log(`reverted to snapshot ${tag}`);
  }

  /** Delete snapshot `tag`; its children hang from its parent, and the current position moves up if it was there. */
  deleteSnapshot(tag: string): void {
    this.needLock();
    const node = this.find(tag);
    const t = this.tree();
    const live = this.linkedClones(node);
    if (live.length) {
      const c = live.map((x) => `${x.name} (${x.path})`).join(', ');
      throw new VmFolderError(`snapshot '${tag}' of VM ${this.name} is shared with the linked clone ${c}, whose disks back onto it; delete the clone first`);
    }
    for (const s of t.snapshots) if (s.parent === node.id) s.parent = node.parent;
    t.snapshots = t.snapshots.filter((s) => s.id !== node.id);
    if (t.current === node.id) t.current = node.parent;
    writeTree(this.path, t);
    // the state and raw copies go; qcow2 images stay while something backs onto them (_sweep)
    for (const f of readdirSync(join(this.path, 'snapshots'))) if (f.startsWith(node.id + '.') && !f.endsWith('.qcow2')) rmSync(join(this.path, 'snapshots', f), { force: true });
    this._sweep();
    this.log(`snapshot deleted: ${tag}`);
  }

  /** Save the running machine's state (snapshot.ts's machineState()) so the next start resumes it (quit --save). */
  suspend(state: MachineStateSource): void {
    this.needLock();
    writeFileAtomic(join(this.path, 'suspended.snap'), state.encode({ name: 'suspended' }));
    this.log('suspended');
  }

  /** Forget the suspended state (after resuming from it: the disks have moved on). */
  dropSuspended(): void {
    rmSync(join(this.path, 'suspended.snap'), { force: true });
  }

  /** Total bytes the folder takes on disk (allocated blocks: sparse disks count what is written). */
  sizeBytes(): number {
    return folderBytes(this.path);
  }
}

function folderBytes(p: string): number {
  let total = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = join(p, e.name);
    if (e.isDirectory()) total += folderBytes(q);
    else if (e.isFile()) total += statSync(q).blocks * 512;
  }
  return total;
}

function writeTree(dir: string, t: SnapshotTree): void {
  writeFileAtomic(join(dir, 'snapshots', 'tree.json'), Buffer.from(JSON.stringify(t, null, 2) + '\n'));
}

/**
 * tree.json of a folder being built under a temporary name (a clone): a
 * plain write, as vm.json's there. The folder appears whole by one rename,
 * so a kill leaves nothing under the clone's name; fsyncing this one file
 * (and its directory) would not make the new folder survive a power cut
 * either, since vm.json and the rename are not synced.
 */
function writeNewTree(dir: string, t: SnapshotTree): void {
  writeFileSync(join(dir, 'snapshots', 'tree.json'), JSON.stringify(t, null, 2) + '\n');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Draw the snapshot tree, marking the current position. */
export function formatTree(t: SnapshotTree): string {
  if (t.snapshots.length === 0) return '(no snapshots)';
  const kids = (parent: string | null) => t.snapshots.filter((s) => s.parent === parent || (parent === null && s.parent !== null && !t.snapshots.some((x) => x.id === s.parent)));
  const lines: string[] = [];
  const walk = (n: SnapshotNode, prefix: string, last: boolean, root: boolean) => {
    const when = n.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    const mark = t.current === n.id ? '   <- you are here' : '';
    lines.push(`${root ? '' : prefix + (last ? '`- ' : '|- ')}${n.name}  (${when}${n.hasState ? '' : ', disks only'})${n.description ? '  ' + n.description : ''}${mark}`);
    const c = kids(n.id);
    c.forEach((k, i) => walk(k, root ? '' : prefix + (last ? '   ' : '|  '), i === c.length - 1, false));
  };
  const roots = kids(null);
  roots.forEach((r) => walk(r, '', true, true));
  if (t.current === null) lines.push('(current state: before the first snapshot)');
  return lines.join('\n');
}

/** VM folders directly inside `dir`. */
export function listVms(dir: string): { path: string; vm: VmFolder | null; error: string | null }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(VM_SUFFIX)).sort();
  } catch (e) {
    throw new VmFolderError(`cannot list ${dir}: ${(e as Error).message}`);
  }
  return names.map((n) => {
    const path = join(dir, n);
    try {
      return { path, vm: VmFolder.open(path), error: null };
    } catch (e) {
      return { path, vm: null, error: (e as Error).message };
    }
  });
}

/** Full clone: a self-contained copy of the folder under a new name (no lock, no log history, same snapshots). */
export function cloneVm(src: VmFolder, dstPath: string, name: string, copied?: Copied): VmFolder {
  checkVmName(name);
  if (existsSync(dstPath)) throw new VmFolderError(`${dstPath} already exists; pick another name`);
  const tmp = `${dstPath}.creating-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    copyTree(src.path, tmp, copied);
    copyOutsideChain(src.path, tmp, copied);
    const t = JSON.parse(readFileSync(join(tmp, 'snapshots', 'tree.json'), 'utf8')) as SnapshotTree;
    for (const n of t.snapshots) delete n.sharedWith; // the copy's snapshots are its own
    writeNewTree(tmp, t);
    const cfg = { ...src.config, name, createdAt: new Date().toISOString() };
    writeFileSync(join(tmp, 'vm.json'), JSON.stringify(cfg, null, 2) + '\n');
    writeFileSync(join(tmp, 'vm.log'), `${cfg.createdAt} cloned from ${src.name}\n`);
    renameSync(tmp, dstPath);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return VmFolder.open(dstPath);
}

function copyTree(from: string, to: string, copied?: Copied, copy = copyFile): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (e.name === 'lock' || e.name.includes('.tmp-')) continue;
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory()) copyTree(a, b, copied, copy);
    else if (e.isFile()) copy(a, b, copied);
  }
}

/**
 * Linked clone: a new VM whose disks are empty qcow2 overlays over the
 * images of `src`'s snapshot `node` (backing names relative from the
 * clone's disks/ folder to the source's snapshots/, so the pair moves
 * together). No disk data is copied. The snapshot is marked shared first,
 * so a kill can leave a share record without a clone (ignored), never a
 * clone whose base can be deleted. `src` must be locked.
 */
export function linkedCloneVm(src: VmFolder, node: SnapshotNode, dstPath: string, name: string, copied?: Copied): VmFolder {
  checkVmName(name);
  if (existsSync(dstPath)) throw new VmFolderError(`${dstPath} already exists; pick another name`);
  const raw = specDisks(src.spec)
    .filter((d) => d.disk.format !== 'qcow2')
    .map((d) => d.key);
  if (raw.length) throw new VmFolderError(`VM ${src.name} has raw disks (${raw.join(', ')}); a linked clone needs qcow2 disks to make overlays over. A full clone works: tsvm clone ${src.name} ${name}`);
  // linkedClone() records it with the snapshot it saves for the clone (one write of tree.json)
  if (!node.sharedWith?.some((x) => x.name === name && resolve(src.path, x.path) === resolve(dstPath))) src.markShared(node.id, name, dstPath);
  const tmp = `${dstPath}.creating-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(join(tmp, 'disks'), { recursive: true });
    mkdirSync(join(tmp, 'snapshots'));
    // kernel, initrd and CD image: read-only, so linked, not copied (a clone of a VM booted from a 600 MB ISO costs no more than one of a small disk)
    copyTree(join(src.path, 'boot'), join(tmp, 'boot'), copied, linkOrCopy);
    const spec: MachineSpec = JSON.parse(JSON.stringify(src.spec)) as MachineSpec;
    for (const { key, disk } of specDisks(spec)) {
      const file = `disks/${key}.qcow2`;
      const base = src.snapshotImage(node.id, key);
      const info = qcow2Info(base);
      if (!info) throw new VmFolderError(`${base} is not a qcow2 image`);
      createQcow2File(join(tmp, file), { size: info.size, backingFile: relative(join(dstPath, 'disks'), base), backingFormat: 'qcow2', renamedAfter: true });
      Object.assign(disk, { file, format: 'qcow2', mode: 'rw' });
      delete (disk as { probed?: boolean }).probed;
    }
    const cd = spec.drives.cdrom;
    if (cd) linkOrCopy(join(src.path, cd.file), join(tmp, cd.file), copied);
    if (node.hasState) copyFile(join(src.path, 'snapshots', `${node.id}.snap`), join(tmp, 'suspended.snap'), copied);
    const cfg: VmConfig = { ...src.config, name, createdAt: new Date().toISOString(), spec };
    writeFileSync(join(tmp, 'vm.json'), JSON.stringify(cfg, null, 2) + '\n');
    writeNewTree(tmp, { version: TREE_VERSION, current: null, snapshots: [] });
    writeFileSync(join(tmp, 'vm.log'), `${cfg.createdAt} linked clone of ${src.name} at snapshot ${node.name}\n`);
    renameSync(tmp, dstPath);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return VmFolder.open(dstPath);
}

/**
 * A linked clone of `src` as a user asks for one: at its snapshot `tag`, or
 * at a new snapshot `clone-NAME` of its disks (and suspended state). Every
 * check comes before the new snapshot is saved, so a refusal changes
 * nothing. Takes `src`'s lock meanwhile.
 */
export function linkedClone(src: VmFolder, tag: string | null, dstPath: string, name: string, copied?: Copied): { vm: VmFolder; node: SnapshotNode } {
  checkVmName(name);
  if (existsSync(dstPath)) throw new VmFolderError(`${dstPath} already exists; pick another name`);
  const raw = specDisks(src.spec)
    .filter((d) => d.disk.format !== 'qcow2')
    .map((d) => d.key);
  if (raw.length) throw new VmFolderError(`VM ${src.name} has raw disks (${raw.join(', ')}); a linked clone needs qcow2 disks to make overlays over. A full clone works`);
  const base = `clone-${name}`;
  if (!tag && src.tree().snapshots.some((s) => s.name === base)) {
    throw new VmFolderError(`VM ${src.name} has a snapshot '${base}' already (an earlier linked clone's base): base the clone on it by naming it as the snapshot, or delete it first`);
  }
  src.lock();
  try {
    const node = tag ? src.find(tag) : src.saveSnapshot(base, `base of linked clone ${name}`, null, undefined, { name, clonePath: dstPath });
    return { vm: linkedCloneVm(src, node, dstPath, name, copied), node };
  } finally {
    src.unlock();
  }
}

/**
 * A full clone of a linked clone: the images its chain reaches outside its
 * folder (the source's snapshot images, and theirs) are copied into the
 * copy's snapshots/, and each copied image that named one gets the name of
 * the copy instead (`../snapshots/FILE`: shorter than the outside name, so
 * it is rewritten in place). The copy is then self-contained.
 */
function copyOutsideChain(srcDir: string, copyDir: string, copied?: Copied): void {
  const outside = (p: string) => {
    const r = relative(srcDir, p);
    return r.startsWith('..') || isAbsolute(r);
  };
  for (const sub of ['disks', 'snapshots']) {
    for (const f of readdirSync(join(copyDir, sub))) {
      if (!f.endsWith('.qcow2')) continue;
      const b = qcow2Info(join(copyDir, sub, f))?.backingFile;
      if (!b) continue;
      const target = resolve(srcDir, sub, b);
      if (!outside(target)) continue;
      // copy the outside chain: each image lives in some snapshots/ folder, its backing beside it
      for (let p: string | null = target, depth = 0; p && depth < 64; depth++) {
        const to = join(copyDir, 'snapshots', basename(p));
        if (!existsSync(to)) copyFile(p, to, copied);
        const next: string | null | undefined = qcow2Info(p)?.backingFile;
        if (next && dirname(resolve(dirname(p), next)) !== dirname(p)) {
          throw new VmFolderError(`${p} backs onto ${next}, outside its snapshots folder; tsvm cannot copy that chain`);
        }
        p = next ? resolve(dirname(p), next) : null;
      }
      setQcow2BackingName(join(copyDir, sub, f), `../snapshots/${basename(target)}`);
    }
  }
}

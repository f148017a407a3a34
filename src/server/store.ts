/**
 * The daemon's VMs on disk: the VM folders of the machine-state work
 * (src/vmm/folder.ts: `NAME.tsvm/` with vm.json, boot files, disks, the
 * snapshot tree, suspended.snap, vm.log and the write lock), plus one file
 * of the daemon's own per VM, `service.json` (autostart, restart policy,
 * heap limit, CPU cap, RSS limit, and whether the daemon suspended it at shutdown).
 *
 * A VM name from a client is checked against one rule before any path is
 * built, so no name reaches outside the directory.
 */
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cloneVm, linkedClone, listVms, VmFolder, VmFolderError, VM_SUFFIX, type Copied, type CopyProgress, type NewDisks, type SnapshotNode, type SnapshotTree } from '../vmm/folder.js';
import type { MachineSpec } from '../vmm/spec.js';
import { revertSnapshot } from '../vmm/revert.js';

export type RestartPolicy = 'never' | 'on-crash';

/** What the daemon keeps about a VM besides its folder. */
export interface VmSettings {
  autostart: boolean;
  restart: RestartPolicy;
  /** The worker's JS heap limit, MiB (guest RAM is outside it). */
  heapLimitMb: number;
  /** The cap on the VM's host CPU share, percent of one core (1-100), or null for none. */
  cpuLimit: number | null;
  /** The cap on the VM process's resident set, MiB, or null for the default (rssLimitMiB() in host.ts). */
  rssLimitMiB: number | null;
  /** The daemon suspended the VM at shutdown: start (resume) it with the daemon. */
  resumeOnStart: boolean;
}

export interface VmRecord {
  name: string;
  spec: MachineSpec;
  settings: VmSettings;
  /** The VM folder: relative paths in the spec resolve against it. */
  dir: string;
}

/** A store problem the API reports as it is. */
export class StoreError extends Error {
  constructor(
    readonly code: 'bad-name' | 'exists' | 'not-found' | 'corrupt' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

export const NAME_RULE = 'a VM name is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Check a VM name from an untrusted source; throws StoreError('bad-name'). */
export function checkName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..')) throw new StoreError('bad-name', `'${name.slice(0, 80)}' is not a VM name: ${NAME_RULE}`);
  return name;
}

export const DEFAULT_SETTINGS: VmSettings = { autostart: false, restart: 'never', heapLimitMb: 256, cpuLimit: null, rssLimitMiB: null, resumeOnStart: false };
const SERVICE_FILE = 'service.json';

/** Run a folder operation, turning its errors into store errors. */
function folderOp<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof VmFolderError) throw new StoreError(/in use|running|shared with the linked clone|raw disks|already \(an earlier linked clone/.test(e.message) ? 'conflict' : /no snapshot|no VM|not a VM folder/.test(e.message) ? 'not-found' : 'corrupt', e.message);
    throw e;
  }
}

export class FolderStore {
  constructor(readonly root: string) {}

  path(name: string): string {
    return join(this.root, checkName(name) + VM_SUFFIX);
  }

  /** Names of the VM folders in the directory (valid or not), sorted. */
  names(): string[] {
    return listVms(this.root)
      .map((v) => basename(v.path, VM_SUFFIX))
      .filter((n) => NAME_RE.test(n))
      .sort();
  }

  folder(name: string): VmFolder {
    const p = this.path(name);
    if (!existsSync(join(p, 'vm.json'))) throw new StoreError('not-found', `there is no VM '${name}'`);
    return folderOp(() => VmFolder.open(p));
  }

  private _settings(name: string): VmSettings {
    try {
      return { ...DEFAULT_SETTINGS, ...(JSON.parse(readFileSync(join(this.path(name), SERVICE_FILE), 'utf8')) as Partial<VmSettings>) };
    } catch {
      return { ...DEFAULT_SETTINGS };
    }
  }

  read(name: string): VmRecord {
    const f = this.folder(name);
    return { name, spec: f.spec, dir: f.path, settings: this._settings(name) };
  }

  /** Make a VM folder from a spec with host paths (files are copied in), with new empty disks. */
  create(name: string, hostSpec: MachineSpec, settings: VmSettings, newDisks: NewDisks = {}, copied?: Copied): VmRecord {
    const p = this.path(name);
    if (existsSync(p)) throw new StoreError('exists', `a VM named '${name}' already exists`);
    folderOp(() => VmFolder.create(p, name, hostSpec, newDisks, undefined, copied));
    this.updateSettings(name, settings);
    return this.read(name);
  }

  updateSettings(name: string, settings: VmSettings): void {
    writeFileSync(join(this.path(name), SERVICE_FILE), JSON.stringify(settings, null, 2) + '\n');
  }

  remove(name: string): void {
    const f = this.folder(name);
    const pid = f.lockedBy();
    if (pid) throw new StoreError('conflict', `VM '${name}' is in use by process ${pid}; stop it first`);
    const clones = folderOp(() => f.linkedClones()).map((c) => c.name);
    if (clones.length) throw new StoreError('conflict', `VM '${name}' has linked clones whose disks back onto its snapshots (${clones.join(', ')}); delete them first`);
    rmSync(f.path, { recursive: true, force: true });
  }

  appendLog(name: string, line: string): void {
    try {
      this.folder(name).log(line);
    } catch {
      // a VM deleted meanwhile has no log to write
    }
  }

  /** The last `maxBytes` of the VM's log. */
  readLog(name: string, maxBytes = 65536): string {
    const path = join(this.folder(name).path, 'vm.log');
    if (!existsSync(path)) return '';
    const text = readFileSync(path, 'utf8');
    return text.length > maxBytes ? text.slice(text.indexOf('\n', text.length - maxBytes) + 1) : text;
  }

  /** The snapshot tree; a snapshot's `sharedWith` lists only the linked clones still in place. */
  tree(name: string): SnapshotTree {
    const f = this.folder(name);
    const t = folderOp(() => f.tree());
    for (const n of t.snapshots) {
      const live = f.linkedClones(n);
      if (live.length) n.sharedWith = live;
      else delete n.sharedWith;
    }
    return t;
  }

  /** Whether the VM has a suspended state its next start resumes. */
  suspended(name: string): boolean {
    return this.folder(name).suspendedPath() !== null;
  }

  /** Run a snapshot operation on a stopped VM, holding its lock meanwhile. */
  private _locked<T>(name: string, fn: (f: VmFolder) => T): T {
    const f = this.folder(name);
    return folderOp(() => {
      f.lock();
      try {
        return fn(f);
      } finally {
        f.unlock();
      }
    });
  }

  saveSnapshot(name: string, tag: string, description: string, progress?: CopyProgress): SnapshotNode {
    return this._locked(name, (f) => f.saveSnapshot(tag, description, null, progress));
  }

  revertSnapshot(name: string, tag: string): SnapshotNode {
    return this._locked(name, (f) => revertSnapshot(f, tag, null));
  }

  deleteSnapshot(name: string, tag: string): void {
    this._locked(name, (f) => f.deleteSnapshot(tag));
  }

  /** A full clone of a stopped VM under a new name; the clone's service settings start afresh. */
  clone(src: string, dst: string, copied?: Copied): VmRecord {
    const dstPath = this.path(dst);
    if (existsSync(dstPath)) throw new StoreError('exists', `a VM named '${dst}' already exists`);
    const f = this.folder(src);
    if (f.lockedBy()) throw new StoreError('conflict', `VM '${src}' is running; stop it before cloning`);
    folderOp(() => cloneVm(f, dstPath, dst, copied));
    this.updateSettings(dst, { ...DEFAULT_SETTINGS });
    return this.read(dst);
  }

  /**
   * A linked clone of a stopped VM: overlays over its snapshot `tag`, or over
   * a new snapshot `clone-DST` of its disks; the source keeps that snapshot.
   */
  linkedClone(src: string, dst: string, tag: string | null, copied?: Copied): VmRecord {
    const dstPath = this.path(dst);
    if (existsSync(dstPath)) throw new StoreError('exists', `a VM named '${dst}' already exists`);
    const f = this.folder(src);
    if (f.lockedBy()) throw new StoreError('conflict', `VM '${src}' is running; stop it before cloning`);
    folderOp(() => linkedClone(f, tag, dstPath, dst, copied));
    this.updateSettings(dst, { ...DEFAULT_SETTINGS });
    return this.read(dst);
  }

  /**
   * Remove a lock left by a VM worker that ended without releasing it: a
   * thread of this process holds it under this process's pid, a VM process
   * (`workerPid`, ended by now) under its own.
   */
  releaseStaleLock(name: string, workerPid: number | null = null): void {
    const p = join(this.path(name), 'lock');
    try {
      const holder = Number(readFileSync(p, 'utf8').trim());
      if (holder === process.pid || (workerPid !== null && holder === workerPid)) unlinkSync(p);
    } catch {
      // no lock
    }
  }
}

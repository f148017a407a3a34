/**
 * Where the daemon keeps its VMs: one folder `NAME.tsvm/` per VM under the
 * daemon's directory, holding `vm.json` (the machine spec and the daemon's
 * settings for it) and `vm.log`. The VM-folder format of the machine-state
 * work (snapshots, clones, disks inside the folder) replaces this behind the
 * same interface; the daemon never touches the files but through it.
 *
 * A VM name is one path component of a restricted alphabet, checked before
 * any path is built, so no name can reach outside the directory.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateSpec, type MachineSpec } from '../vmm/spec.js';

export type RestartPolicy = 'never' | 'on-crash';

/** What the daemon keeps about a VM besides its machine. */
export interface VmSettings {
  autostart: boolean;
  restart: RestartPolicy;
  /** The worker's JS heap limit, MiB (guest RAM is outside it). */
  heapLimitMb: number;
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
    readonly code: 'bad-name' | 'exists' | 'not-found' | 'corrupt',
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

export const DEFAULT_SETTINGS: VmSettings = { autostart: false, restart: 'never', heapLimitMb: 256 };

const SUFFIX = '.tsvm';
const FILE_VERSION = 1;

export class FolderStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  private _dir(name: string): string {
    return join(this.root, checkName(name) + SUFFIX);
  }

  /** Names of the VMs in the directory, sorted. */
  names(): string[] {
    return readdirSync(this.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name.endsWith(SUFFIX) && existsSync(join(this.root, d.name, 'vm.json')))
      .map((d) => d.name.slice(0, -SUFFIX.length))
      .filter((n) => NAME_RE.test(n))
      .sort();
  }

  read(name: string): VmRecord {
    const dir = this._dir(name);
    let text: string;
    try {
      text = readFileSync(join(dir, 'vm.json'), 'utf8');
    } catch {
      throw new StoreError('not-found', `there is no VM '${name}'`);
    }
    let json: { version?: unknown; machine?: unknown; settings?: Partial<VmSettings> };
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new StoreError('corrupt', `${join(dir, 'vm.json')} is not JSON: ${(e as Error).message}`);
    }
    if (json.version !== FILE_VERSION) throw new StoreError('corrupt', `${join(dir, 'vm.json')} has version ${String(json.version)}; this tsvm reads version ${FILE_VERSION}`);
    let spec: MachineSpec;
    try {
      spec = validateSpec(json.machine);
    } catch (e) {
      throw new StoreError('corrupt', `${join(dir, 'vm.json')}: ${(e as Error).message}`);
    }
    return { name, spec, dir, settings: { ...DEFAULT_SETTINGS, ...json.settings } };
  }

  private _write(name: string, spec: MachineSpec, settings: VmSettings): void {
    const dir = this._dir(name);
    const tmp = join(dir, 'vm.json.tmp');
    writeFileSync(tmp, JSON.stringify({ version: FILE_VERSION, machine: spec, settings }, null, 2) + '\n');
    renameSync(tmp, join(dir, 'vm.json'));
  }

  create(name: string, spec: MachineSpec, settings: VmSettings): VmRecord {
    const dir = this._dir(name);
    try {
      mkdirSync(dir);
    } catch {
      throw new StoreError('exists', `a VM named '${name}' already exists`);
    }
    this._write(name, spec, settings);
    return { name, spec, settings, dir };
  }

  updateSettings(name: string, settings: VmSettings): void {
    const r = this.read(name);
    this._write(name, r.spec, settings);
  }

  remove(name: string): void {
    const dir = this._dir(name);
    if (!existsSync(join(dir, 'vm.json'))) throw new StoreError('not-found', `there is no VM '${name}'`);
    rmSync(dir, { recursive: true, force: true });
  }

  appendLog(name: string, line: string): void {
    try {
      appendFileSync(join(this._dir(name), 'vm.log'), `${new Date().toISOString()} ${line}\n`);
    } catch {
      // a VM deleted meanwhile has no log to write
    }
  }

  /** The last `maxBytes` of the VM's log. */
  readLog(name: string, maxBytes = 65536): string {
    const path = join(this._dir(name), 'vm.log');
    if (!existsSync(path)) {
      if (!existsSync(join(this._dir(name), 'vm.json'))) throw new StoreError('not-found', `there is no VM '${name}'`);
      return '';
    }
    const text = readFileSync(path, 'utf8');
    return text.length > maxBytes ? text.slice(text.indexOf('\n', text.length - maxBytes) + 1) : text;
  }
}

/**
 * The machine spec: what a machine is (RAM, firmware, kernel, drives, boot
 * order, RTC start, where its character devices go), as plain JSON that a
 * file, an API request or a snapshot header can hold. Files are named by
 * path (relative paths are resolved against a base directory: the VM folder)
 * or by a well-known name ('seabios'); character devices by a target name
 * ('stdio', 'none', 'file:PATH'). The runner opens the host resources from
 * it (resources.ts); the board never sees a path.
 *
 * validateSpec() checks untrusted JSON field by field and says which field is
 * wrong and what it should be; unknown fields are refused, so a typo in a
 * hand-edited vm.json is reported rather than ignored.
 */
import { validateNics, type NicSpec } from './netspec.js';
import { parseSize } from '../base/hex.js';
import { DEFAULT_RTC_EPOCH } from '../board/rtc-epoch.js';
import { validateVirtio, type VirtioSpec } from './virtio-spec.js';
import { VmConfigError } from './errors.js';

export { DEFAULT_RTC_EPOCH };

export { parseSize };

/** Bumped when the spec's meaning changes; a spec of another version is refused. */
export const SPEC_VERSION = 1;

/** Disk image formats (src/storage; opened in drives.ts). */
export type DriveFormat = 'raw' | 'qcow2';
export const DRIVE_FORMATS: readonly string[] = ['raw', 'qcow2'];

/** How a drive's image is opened: read-write, read-only, or QEMU's -snapshot (writes kept aside, dropped). */
export type DriveMode = 'rw' | 'ro' | 'snapshot';

export interface DriveSpec {
  /** The image: a path, relative to the base directory unless absolute. */
  file: string;
  format: DriveFormat;
  mode: DriveMode;
  /**
   * The format was told from the file's header rather than given (plain -hda):
   * a raw image then refuses a guest write that would make it look like
   * another format, as QEMU restricts probed raw images.
   */
  probed?: boolean;
}

/** The IDE drive slots: primary master and slave, and the CD-ROM on the secondary master. */
export const DRIVE_SLOTS = ['hda', 'hdb', 'cdrom'] as const;
export type DriveSlot = (typeof DRIVE_SLOTS)[number];

export interface LinuxSpec {
  kernel: string;
  /** The same kernel decompressed (an ELF), loaded instead of running the bzImage's decompressor. */
  vmlinux?: string;
  initrd?: string;
  cmdline: string;
}

export interface MachineSpec {
  version: number;
  memoryBytes: number;
  /** System firmware: 'seabios' (Debian's SeaBIOS), a path, or null (direct kernel boot only). */
  bios: string | null;
  /** The VGA card's option ROM: 'seabios' (Debian's vgabios-stdvga), a path, or null. */
  vgaBios: string | null;
  /** Direct Linux boot (without firmware, or ahead of it). */
  linux: LinuxSpec | null;
  /** Firmware boot order: c hard disk, d CD-ROM. */
  boot: string;
  drives: Partial<Record<DriveSlot, DriveSpec>>;
  /** RTC time at power-on, seconds since 1970. */
  rtcEpochSec: number;
  /** COM1's target: 'stdio', 'none', 'file:PATH', or 'chan:NAME' (a channel the host provides when it opens the machine). */
  serial: string;
  /** The debug console (ports 0xE9, 0x402) and POST codes (port 0x80): a target, or null. */
  debugcon: string | null;
  postcodes: string | null;
  /** Network cards (netspec.ts); absent when the machine has none. */
  nics?: NicSpec[];
  /** Virtio devices (virtio.ts), in PCI slot order from 00:03.0; absent means none. */
  virtio?: VirtioSpec[];
}

/** A spec or host-resource problem (defined in errors.ts, which front ends load alone). */
export { VmConfigError };

/** A spec with the defaults filled in, for callers that build one field by field. */
export function defaultSpec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    version: SPEC_VERSION,
    memoryBytes: 128 * 1048576,
    bios: 'seabios',
    vgaBios: 'seabios',
    linux: null,
    boot: 'cd',
    drives: {},
    rtcEpochSec: DEFAULT_RTC_EPOCH,
    serial: 'stdio',
    debugcon: null,
    postcodes: null,
    ...over,
  };
}

const MIN_RAM = 64 * 1024;
const MAX_RAM = 3 * 1024 * 1024 * 1024;

/** Check that a character target names something the host can open. */
export function checkCharTarget(subject: string, v: unknown): string {
  if (typeof v !== 'string') throw new VmConfigError(subject, `must be a string: stdio, none or file:PATH`);
  if (v === 'stdio' || v === 'none' || v === 'null') return v;
  // a channel the host provides by name when it opens the machine (a daemon's console socket, a test's capture)
  if (/^chan:[A-Za-z0-9_-]{1,64}$/.test(v)) return v;
  if (v.startsWith('file:')) {
    if (v.length === 5) throw new VmConfigError(subject, `'file:' needs a path, as in file:/tmp/out.txt`);
    return v;
  }
  throw new VmConfigError(subject, `'${v}' is not a character device; use stdio, file:PATH, chan:NAME or none`);
}

function str(subject: string, v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new VmConfigError(subject, `must be ${what}`);
  if (v.includes('\0')) throw new VmConfigError(subject, 'contains a NUL byte');
  return v;
}

function obj(subject: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new VmConfigError(subject, 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new VmConfigError(subject, `has an unknown field '${k}' (known: ${allowed.join(', ')})`);
  }
  return o;
}

/**
 * Check untrusted JSON and return it as a MachineSpec (a fresh object). Throws
 * VmConfigError naming the first wrong field.
 */
export function validateSpec(json: unknown): MachineSpec {
  const o = obj('machine', json, ['version', 'memoryBytes', 'bios', 'vgaBios', 'linux', 'boot', 'drives', 'rtcEpochSec', 'serial', 'debugcon', 'postcodes', 'nics', 'virtio']);
  if (o.version !== SPEC_VERSION) {
    throw new VmConfigError('version', `the machine spec is of version ${JSON.stringify(o.version)}; this tsvm reads version ${SPEC_VERSION}`);
  }
  const mem = o.memoryBytes;
  if (typeof mem !== 'number' || !Number.isInteger(mem) || mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) {
    throw new VmConfigError('memory', `${JSON.stringify(mem)} bytes is not a RAM size tsvm can give a machine: a multiple of 4 KiB from 64 KiB to 3 GiB`);
  }
  const bios = o.bios === null || o.bios === undefined ? null : str('bios', o.bios, "a firmware image path or 'seabios'");
  const vgaBios = o.vgaBios === null || o.vgaBios === undefined ? null : str('vgaBios', o.vgaBios, "a VGA ROM path or 'seabios'");
  let linux: LinuxSpec | null = null;
  if (o.linux !== null && o.linux !== undefined) {
    const l = obj('linux', o.linux, ['kernel', 'vmlinux', 'initrd', 'cmdline']);
    linux = { kernel: str('kernel', l.kernel, 'the path of a Linux bzImage'), cmdline: '' };
    if (l.vmlinux !== undefined) linux.vmlinux = str('vmlinux', l.vmlinux, 'the path of the decompressed kernel');
    if (l.initrd !== undefined) linux.initrd = str('initrd', l.initrd, 'the path of an initial ramdisk');
    if (l.cmdline !== undefined && typeof l.cmdline !== 'string') throw new VmConfigError('cmdline', 'must be a string');
    linux.cmdline = (l.cmdline as string | undefined) ?? '';
  }
  if (!bios && !linux) throw new VmConfigError('machine', 'nothing to run: the machine has neither firmware nor a kernel');
  const boot = o.boot ?? 'cd';
  if (typeof boot !== 'string' || !/^[acd]+$/.test(boot)) {
    throw new VmConfigError('boot', `'${String(boot)}' is not a boot order; use letters c (hard disk) and d (CD-ROM), e.g. 'd' or 'cd'`);
  }
  const drives: Partial<Record<DriveSlot, DriveSpec>> = {};
  const d = obj('drives', o.drives ?? {}, DRIVE_SLOTS);
  for (const slot of DRIVE_SLOTS) {
    if (d[slot] === undefined || d[slot] === null) continue;
    const ds = obj(slot, d[slot], ['file', 'format', 'mode', 'probed']);
    if (ds.probed !== undefined && typeof ds.probed !== 'boolean') throw new VmConfigError(slot, 'probed must be true or false');
    const format = ds.format ?? 'raw';
    if (typeof format !== 'string' || !DRIVE_FORMATS.includes(format)) {
      throw new VmConfigError(slot, `format '${String(format)}' is not one tsvm reads; formats: ${DRIVE_FORMATS.join(', ')}`);
    }
    const mode = ds.mode ?? (slot === 'cdrom' ? 'ro' : 'rw');
    if (mode !== 'rw' && mode !== 'ro' && mode !== 'snapshot') throw new VmConfigError(slot, `mode '${String(mode)}' is not rw, ro or snapshot`);
    drives[slot] = { file: str(slot, ds.file, 'the path of a disk image'), format: format as DriveFormat, mode };
    if (ds.probed) drives[slot].probed = true;
  }
  const rtc = o.rtcEpochSec ?? DEFAULT_RTC_EPOCH;
  if (typeof rtc !== 'number' || !Number.isInteger(rtc) || rtc < 0 || rtc > 4102444800) {
    throw new VmConfigError('rtcEpochSec', 'must be whole seconds since 1970, before 2100');
  }
  const nics = o.nics === undefined || o.nics === null ? [] : validateNics(o.nics);
  const virtio = validateVirtio(o.virtio);
  return {
    ...(nics.length ? { nics } : {}),
    ...(virtio.length ? { virtio } : {}),
    version: SPEC_VERSION,
    memoryBytes: mem,
    bios,
    vgaBios,
    linux,
    boot,
    drives,
    rtcEpochSec: rtc,
    serial: checkCharTarget('serial', o.serial ?? 'stdio'),
    debugcon: o.debugcon === null || o.debugcon === undefined ? null : checkCharTarget('debugcon', o.debugcon),
    postcodes: o.postcodes === null || o.postcodes === undefined ? null : checkCharTarget('postcodes', o.postcodes),
  };
}

/**
 * Why two specs describe machines whose states do not fit each other (RAM
 * size, firmware presence, drive set), or null when a state saved on one
 * loads into the other. Paths may differ: a moved VM folder is the same machine.
 */
export function specMismatch(a: MachineSpec, b: MachineSpec): string | null {
  if (a.memoryBytes !== b.memoryBytes) return `RAM is ${a.memoryBytes / 1048576} MiB here and ${b.memoryBytes / 1048576} MiB in the saved state`;
  if (Boolean(a.bios) !== Boolean(b.bios)) return 'one machine has firmware and the other has not';
  // the CD-ROM drive is always there; only its medium differs
  for (const s of ['hda', 'hdb'] as const) {
    if (Boolean(a.drives[s]) !== Boolean(b.drives[s])) return `drive ${s} is ${a.drives[s] ? 'present' : 'absent'} here and ${b.drives[s] ? 'present' : 'absent'} in the saved state`;
  }
  if ((a.nics?.length ?? 0) !== (b.nics?.length ?? 0)) return `the machine has ${a.nics?.length ?? 0} NICs here and ${b.nics?.length ?? 0} in the saved state`;
  const va = (a.virtio ?? []).map((v) => v.type).join(',');
  const vb = (b.virtio ?? []).map((v) => v.type).join(',');
  if (va !== vb) return `the virtio devices are [${va}] here and [${vb}] in the saved state`;
  return null;
}

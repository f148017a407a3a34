/**
 * From a MachineSpec to a running machine: read the firmware and kernel
 * files, open the drives and character sinks, build the Machine, and hand
 * them all to a VmRunner that releases them when disposed. Everything that
 * touches the host for a machine happens here, so an error reads the same
 * from the CLI, the daemon and a snapshot restore.
 */
import { openNics } from './netopen.js';
import type { IoCounters } from './iostats.js';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { findFont8x16, LinuxBootError, Machine, MachineConfigError, MAX_BIOS_BYTES, MemoryConfigError, type MachineConfig } from '../board/machine.js';
import type { KernelFile } from '../board/linuxboot.js';
import { CharSpecError, openCharSink, type HostCharSink } from '../host/node/chardev.js';
import type { OpenedBlock } from '../host/node/block.js';
import { openDrive, specPath } from './drives.js';
import { openVirtioDevices } from './virtio.js';
import { VmRunner, type RunnerOptions } from './runner.js';
import { DRIVE_SLOTS, validateSpec, VmConfigError, type MachineSpec } from './spec.js';
import { SEABIOS_BIOS, SEABIOS_DIR, SEABIOS_VGA, seabiosVgaInstalled } from './firmware.js';

export { SEABIOS_DIR, SEABIOS_BIOS, SEABIOS_VGA, seabiosVgaInstalled };

/** The size of a file for the machine, or a clear error: it is missing, not a file, empty or too large. */
function machineFileSize(subject: string, path: string, what: string, max: number): number {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new VmConfigError(subject, `${what} ${path} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof VmConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new VmConfigError(subject, `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size === 0) throw new VmConfigError(subject, `${what} ${path} is empty`);
  if (size > max) throw new VmConfigError(subject, `${what} ${path} is ${size} bytes, larger than the ${max / 1048576} MiB a PC maps for firmware`);
  return size;
}

/**
 * A kernel file the machine reads at every power-on and reset (linuxboot.ts
 * LinuxImages): checked now, and again at each load, so that a file removed
 * or emptied since the VM started stops the reset with this message instead
 * of loading part of it.
 */
export function openMachineFile(subject: string, path: string, what: string): KernelFile {
  machineFileSize(subject, path, what, Infinity);
  return {
    get size() {
      return machineFileSize(subject, path, what, Infinity);
    },
    read(into: Uint8Array, position: number): void {
      const fd = openSync(path, 'r');
      try {
        for (let done = 0; done < into.length; ) {
          const n = readSync(fd, into, done, into.length - done, position + done);
          if (n === 0) throw new VmConfigError(subject, `${what} ${path} became shorter while it was read`);
          done += n;
        }
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Read a whole file for the machine (firmware). */
export function readMachineFile(subject: string, path: string, what: string, max = Infinity): Uint8Array {
  machineFileSize(subject, path, what, max);
  // a view over the Buffer's own memory, not a copy: a large copy's freed
  // original raises glibc's mmap threshold, after which the run's later
  // allocations fill its heap around the hole (docs/cpu-jit.md, "Memory")
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function firmware(subject: string, name: string, baseDir: string, seabiosPath: string, what: string): Uint8Array {
  if (name === 'seabios') {
    if (!existsSync(seabiosPath)) {
      throw new VmConfigError(subject, `${what} ${seabiosPath} is missing; install Debian's seabios package (sudo apt-get install seabios) or give the machine another firmware image`);
    }
    return readMachineFile(subject, seabiosPath, what, MAX_BIOS_BYTES);
  }
  return readMachineFile(subject, specPath(baseDir, name), what === 'the default BIOS' ? 'BIOS image' : what, MAX_BIOS_BYTES);
}

export { AccelError, parseAccel, type AccelConfig } from '../jit/accel.js';

export interface OpenOptions {
  /** Execution tier and compile threshold (-accel); default: the machine's. */
  accel?: MachineConfig['accel'];
  /** Directory that relative paths in the spec are relative to (the VM folder; default the current directory). */
  baseDir?: string;
  /** Called on the first byte the guest writes to COM1 (front ends clear a status line). */
  onSerialOutput?: () => void;
  /** Host-provided character channels, by the NAME of `chan:NAME` targets in the spec. */
  channels?: Record<string, HostCharSink>;
  /** Printed problems that do not stop the machine (a disk opened read-only). */
  onWarning?: (message: string) => void;
  /** Count each disk's and NIC's traffic here (the daemon's stats); without it the backends are used bare. */
  io?: IoCounters;
}

/** Build the machine a spec describes, with its host resources. */
export function openMachine(specJson: unknown, o: OpenOptions = {}): { spec: MachineSpec; machine: Machine; sinks: HostCharSink[]; drives: OpenedBlock[]; nets: (() => void)[]; closers: (() => void)[] } {
  const spec = validateSpec(specJson);
  const baseDir = o.baseDir ?? process.cwd();
  const sinks: HostCharSink[] = [];
  const drives: OpenedBlock[] = [];
  const nets: (() => void)[] = [];
  const closers: (() => void)[] = [];
  const release = () => {
    for (const n of nets) n();
    for (const s of sinks) s.close();
    for (const d of drives) d.close();
    for (const c of closers) c();
  };
  try {
    const cfg: MachineConfig = { memoryBytes: spec.memoryBytes, boot: spec.boot, rtcEpochSec: spec.rtcEpochSec, accel: o.accel };
    if (spec.bios) cfg.bios = firmware('bios', spec.bios, baseDir, SEABIOS_BIOS, spec.bios === 'seabios' ? 'the default BIOS' : 'BIOS image');
    if (spec.vgaBios) cfg.vgaBios = firmware('vgaBios', spec.vgaBios, baseDir, SEABIOS_VGA, 'the VGA BIOS');
    if (spec.linux && !spec.bios) {
      // no firmware: the board sets the VGA's text mode itself, with the font of the VGA BIOS there would be
      const rom = cfg.vgaBios ?? (existsSync(SEABIOS_VGA) ? readMachineFile('vgaBios', SEABIOS_VGA, 'the VGA BIOS', MAX_BIOS_BYTES) : null);
      const font = rom ? findFont8x16(rom) : null;
      if (font) cfg.vgaFont = font;
    }
    if (spec.linux) {
      const l = spec.linux;
      // read at every power-on and reset, straight into guest RAM (linuxboot.ts LinuxImages)
      cfg.linux = {
        kernel: openMachineFile('kernel', specPath(baseDir, l.kernel), 'kernel'),
        vmlinux: l.vmlinux ? openMachineFile('vmlinux', specPath(baseDir, l.vmlinux), 'kernel') : undefined,
        initrd: l.initrd ? openMachineFile('initrd', specPath(baseDir, l.initrd), 'initrd') : undefined,
        cmdline: l.cmdline,
      };
    }
    for (const slot of DRIVE_SLOTS) {
      const d = spec.drives[slot];
      if (!d) continue;
      const opened = openDrive(slot, d, baseDir);
      drives.push(opened);
      if (opened.warning) o.onWarning?.(opened.warning);
      cfg[slot] = o.io ? o.io.disk(slot, opened.backend) : opened.backend;
    }
    const virtio = openVirtioDevices(spec.virtio ?? [], baseDir, o.onWarning, o.io);
    closers.push(...virtio.closers);
    cfg.virtio = virtio.devices;
    const sink = (subject: string, target: string) => {
      let s: HostCharSink;
      if (target.startsWith('chan:')) {
        const ch = o.channels?.[target.slice(5)];
        if (!ch) throw new VmConfigError(subject, `there is no host channel '${target.slice(5)}'`);
        sinks.push(ch);
        return ch;
      }
      try {
        s = openCharSink(target.startsWith('file:') ? `file:${specPath(baseDir, target.slice(5))}` : target, subject);
      } catch (e) {
        if (e instanceof CharSpecError) throw new VmConfigError(subject, e.message.replace(`${subject}: `, ''));
        throw e;
      }
      sinks.push(s);
      return s;
    };
    const serial = sink('serial', spec.serial);
    if (o.onSerialOutput) {
      const w = serial.write.bind(serial);
      const first = o.onSerialOutput;
      let spoke = false;
      serial.write = (b: number) => {
        if (!spoke) {
          spoke = true;
          first();
        }
        w(b);
      };
    }
    cfg.serial = [serial];
    if (spec.debugcon) cfg.debugcon = sink('debugcon', spec.debugcon);
    if (spec.postcodes) cfg.postcodes = sink('postcodes', spec.postcodes);
    if (spec.nics) {
      const n = openNics(spec.nics, baseDir, o.onWarning);
      nets.push(n.close);
      cfg.nics = o.io ? n.nics.map((c) => ({ ...c, backend: (o.io as IoCounters).nic(c.backend) })) : n.nics;
    }
    let machine: Machine;
    try {
      machine = new Machine(cfg);
    } catch (e) {
      if (e instanceof MachineConfigError || e instanceof MemoryConfigError || e instanceof LinuxBootError) throw new VmConfigError('machine', e.message);
      throw e;
    }
    return { spec, machine, sinks, drives, nets, closers };
  } catch (e) {
    release();
    throw e;
  }
}

/** A runner for the machine a spec describes; disposing it releases the files, disks and sinks. */
export function createRunner(specJson: unknown, o: OpenOptions & Omit<RunnerOptions, 'sinks' | 'closers'> = {}): VmRunner {
  const { spec, machine, sinks, drives, nets, closers } = openMachine(specJson, o);
  return new VmRunner(machine, { ...o, spec, sinks, closers: [...drives.map((d) => () => d.close()), ...nets, ...closers] });
}

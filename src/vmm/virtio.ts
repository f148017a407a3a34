/**
 * Virtio devices in the machine spec: what each is, as JSON a vm.json or a
 * snapshot header can hold, its validation, and opening its host resources
 * (disk images, shared folders, console files and sockets, host entropy).
 *
 *   { "type": "blk", "file": "disk.img", "format": "raw", "mode": "rw" }
 *   { "type": "rng" }
 *   { "type": "console", "chardev": "file:PATH" | "socket:PATH" }
 *   { "type": "9p", "path": "DIR", "tag": "TAG", "readOnly": false }
 *
 * The order is the PCI slot order (from 00:03.0 on) and the device ids.
 */
import { openSync, writeSync, closeSync } from 'node:fs';
import type { IoCounters } from './iostats.js';
import type { CharBackend } from '../devices/backends.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioConsole } from '../devices/virtio/console.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { Virtio9p } from '../devices/virtio/9p.js';
import { HostEntropy } from '../host/node/entropy.js';
import { HostShare, ShareError } from '../host/node/fs9p.js';
import { SocketChar, SocketCharError } from '../host/node/charsocket.js';
import { BlockBackendError, openBlockFile } from '../host/node/block.js';
import { specPath } from './drives.js';
import { DRIVE_FORMATS, VmConfigError, type DriveFormat, type DriveMode } from './spec.js';

export type VirtioSpec =
  | { type: 'blk'; file: string; format: DriveFormat; mode: DriveMode }
  | { type: 'rng' }
  | { type: 'console'; chardev: string }
  | { type: '9p'; path: string; tag: string; readOnly: boolean };

export const VIRTIO_TYPES = ['blk', 'rng', 'console', '9p'] as const;

function fields(subject: string, o: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new VmConfigError(subject, `has an unknown field '${k}' (known: ${allowed.join(', ')})`);
}

function text(subject: string, v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw new VmConfigError(subject, `must be ${what}`);
  return v;
}

/** Check untrusted JSON: a list of virtio device specs. */
export function validateVirtio(v: unknown): VirtioSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new VmConfigError('virtio', 'must be a list of devices');
  if (v.length > 24) throw new VmConfigError('virtio', 'has more devices than the PCI bus has free slots (24)');
  return v.map((d: unknown, i): VirtioSpec => {
    const subject = `virtio[${i}]`;
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new VmConfigError(subject, 'must be an object');
    const o = d as Record<string, unknown>;
    switch (o.type) {
      case 'blk': {
        fields(subject, o, ['type', 'file', 'format', 'mode']);
        const format = o.format ?? 'raw';
        if (typeof format !== 'string' || !DRIVE_FORMATS.includes(format)) throw new VmConfigError(subject, `format '${String(format)}' is not one tsvm reads; formats: ${DRIVE_FORMATS.join(', ')}`);
        const mode = o.mode ?? 'rw';
        if (mode !== 'rw' && mode !== 'ro' && mode !== 'snapshot') throw new VmConfigError(subject, `mode '${String(mode)}' is not rw, ro or snapshot`);
        return { type: 'blk', file: text(subject, o.file, 'the path of a disk image'), format: format as DriveFormat, mode };
      }
      case 'rng':
        fields(subject, o, ['type']);
        return { type: 'rng' };
      case 'console': {
        fields(subject, o, ['type', 'chardev']);
        const c = text(subject, o.chardev, "a character target: 'file:PATH' or 'socket:PATH'");
        if (!/^(file|socket):./.test(c)) throw new VmConfigError(subject, `chardev '${c}' is not 'file:PATH' or 'socket:PATH'`);
        return { type: 'console', chardev: c };
      }
      case '9p': {
        fields(subject, o, ['type', 'path', 'tag', 'readOnly']);
        const tag = text(subject, o.tag, 'a mount tag');
        if (Buffer.byteLength(tag) > 31) throw new VmConfigError(subject, 'the mount tag is longer than 31 bytes');
        if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') throw new VmConfigError(subject, 'readOnly must be true or false');
        return { type: '9p', path: text(subject, o.path, 'the path of a folder'), tag, readOnly: o.readOnly === true };
      }
      default:
        throw new VmConfigError(subject, `type '${String(o.type)}' is not a virtio device tsvm offers (${VIRTIO_TYPES.join(', ')})`);
    }
  });
}

/** A character backend writing guest output to a file. */
class FileChar implements CharBackend {
  constructor(private readonly _fd: number) {}
  write(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) off += writeSync(this._fd, data, off, data.length - off);
  }
  close(): void {
    closeSync(this._fd);
  }
}

/** Open the host side of each device and build it. Throws VmConfigError naming the device; nothing stays open then. */
export function openVirtioDevices(specs: readonly VirtioSpec[], baseDir: string, onWarning?: (m: string) => void, io?: IoCounters): { devices: VirtioDevice[]; closers: (() => void)[] } {
  const devices: VirtioDevice[] = [];
  const closers: (() => void)[] = [];
  const count = new Map<string, number>();
  const nextId = (base: string) => {
    const n = count.get(base) ?? 0;
    count.set(base, n + 1);
    return `${base}${n}`;
  };
  try {
    specs.forEach((s, i) => {
      const subject = `virtio[${i}]`;
      switch (s.type) {
        case 'blk': {
          const id = nextId('virtio-blk');
          try {
            const d = openBlockFile(specPath(baseDir, s.file), s.mode, id, s.format);
            if (d.warning) onWarning?.(d.warning);
            closers.push(() => d.close());
            devices.push(new VirtioBlk(id, io ? io.disk(id, d.backend) : d.backend));
          } catch (e) {
            if (e instanceof BlockBackendError) throw new VmConfigError(subject, e.message);
            throw e;
          }
          return;
        }
        case 'rng':
          devices.push(new VirtioRng(nextId('virtio-rng'), new HostEntropy()));
          return;
        case 'console': {
          const path = specPath(baseDir, s.chardev.slice(s.chardev.indexOf(':') + 1));
          const id = nextId('virtio-console');
          if (s.chardev.startsWith('socket:')) {
            let sc: SocketChar;
            try {
              sc = new SocketChar(path);
            } catch (e) {
              if (e instanceof SocketCharError) throw new VmConfigError(subject, e.message);
              throw e;
            }
            closers.push(() => sc.close());
            const con = new VirtioConsole(id, sc);
            sc.onInput = (d) => con.receive(d);
            devices.push(con);
          } else {
            let fd: number;
            try {
              fd = openSync(path, 'w');
            } catch (e) {
              throw new VmConfigError(subject, `cannot open ${path} for writing: ${(e as Error).message}`);
            }
            const fc = new FileChar(fd);
            closers.push(() => fc.close());
            devices.push(new VirtioConsole(id, fc));
          }
          return;
        }
        case '9p': {
          let share: HostShare;
          try {
            share = new HostShare(specPath(baseDir, s.path), s.readOnly);
          } catch (e) {
            if (e instanceof ShareError) throw new VmConfigError(subject, e.message);
            throw e;
          }
          closers.push(() => share.closeAll());
          devices.push(new Virtio9p(nextId('virtio-9p'), s.tag, share));
          return;
        }
      }
    });
  } catch (e) {
    for (const c of closers) c();
    throw e;
  }
  return { devices, closers };
}

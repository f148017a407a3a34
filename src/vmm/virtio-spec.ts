/**
 * Virtio devices in the machine spec, as JSON a vm.json or a snapshot header
 * can hold, and their validation (virtio.ts opens their host resources and
 * builds the devices):
 *
 *   { "type": "blk", "file": "disk.img", "format": "raw", "mode": "rw" }
 *   { "type": "rng" }
 *   { "type": "console", "chardev": "file:PATH" | "socket:PATH" }
 *   { "type": "9p", "path": "DIR", "tag": "TAG", "readOnly": false }
 */
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


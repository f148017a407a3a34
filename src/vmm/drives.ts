/**
 * Opening a drive from its spec: the one place that turns a DriveSpec into a
 * BlockBackend, through host/node/block.ts (raw files directly, qcow2 through
 * src/storage, backing files followed).
 */
import { isAbsolute, resolve } from 'node:path';
import { BlockBackendError, FileBlockBackend, openBlockFile, probeImageFormat, type OpenedBlock } from '../host/node/block.js';
import { VmConfigError, type DriveFormat, type DriveSlot, type DriveSpec } from './spec.js';

/** Resolve a spec path: relative paths are relative to the base directory (the VM folder). */
export function specPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Open one drive's image. Throws VmConfigError naming the slot. */
export function openDrive(slot: DriveSlot, d: DriveSpec, baseDir: string): OpenedBlock {
  const path = specPath(baseDir, d.file);
  switch (d.format) {
    case 'raw':
    case 'qcow2':
      try {
        const o = openBlockFile(path, d.mode, slot, d.format);
        if (d.probed && o.backend instanceof FileBlockBackend) o.backend.guardProbedFormat = true;
        return o;
      } catch (e) {
        if (e instanceof BlockBackendError) throw new VmConfigError(slot, e.message.replace(`${slot}: `, ''));
        throw e;
      }
    default:
      throw new VmConfigError(slot, `format '${String(d.format)}' is not supported`);
  }
}

/**
 * The format of a disk image named on the command line without one (-hda),
 * told by its header: qcow2 or raw. A file that cannot be read counts as raw
 * here; opening it reports the problem.
 */
export function probeDriveFormat(path: string, what: string): DriveFormat {
  let f;
  try {
    f = probeImageFormat(path, what);
  } catch {
    return 'raw';
  }
  if (typeof f !== 'string') throw new VmConfigError(what, `${path} is a ${f.foreign} image, which tsvm does not read; convert it with: qemu-img convert -O qcow2 ${path} disk.qcow2`);
  return f;
}

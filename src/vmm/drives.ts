/**
 * Opening a drive from its spec: the one place that turns a DriveSpec into a
 * BlockBackend. Raw images come from host/node/block.ts. This is the seam for
 * image formats: qcow2 (src/storage) adds a case here that opens the file and
 * returns its BlockBackend; nothing above (runner, snapshots, CLI) changes.
 */
import { isAbsolute, resolve } from 'node:path';
import { BlockBackendError, openBlockFile, type OpenedBlock } from '../host/node/block.js';
import { VmConfigError, type DriveSlot, type DriveSpec } from './spec.js';

/** Resolve a spec path: relative paths are relative to the base directory (the VM folder). */
export function specPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Open one drive's image. Throws VmConfigError naming the slot. */
export function openDrive(slot: DriveSlot, d: DriveSpec, baseDir: string): OpenedBlock {
  const path = specPath(baseDir, d.file);
  switch (d.format) {
    case 'raw':
      try {
        return openBlockFile(path, d.mode, slot);
      } catch (e) {
        if (e instanceof BlockBackendError) throw new VmConfigError(slot, e.message.replace(`${slot}: `, ''));
        throw e;
      }
    default:
      throw new VmConfigError(slot, `format '${String(d.format)}' is not supported`);
  }
}

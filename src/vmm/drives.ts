/**
 * Opening a drive from its spec: the one place that turns a DriveSpec into a
 * BlockBackend, through host/node/block.ts (raw files directly, qcow2 through
 * src/storage, backing files followed).
 */
import { isAbsolute, resolve } from 'node:path';
import { BlockBackendError, FileBlockBackend, openBlockFile, probeImageFormat, type OpenedBlock } from '../host/node/block.js';
import { VmConfigError, type DriveFormat, type DriveSlot, type DriveSpec } from './spec.js';
import { blockReadv, blockWritev } from '../devices/backends.js';
import { flushOpenDrive, registerOpenDrive, reopenDrive } from './open-drives.js';

/** Resolve a spec path: relative paths are relative to the base directory (the VM folder). */
export function specPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Open one drive's image. Throws VmConfigError naming the slot. */
export function openDrive(slot: DriveSlot, d: DriveSpec, baseDir: string): OpenedBlock {
  return openDisk(slot, slot, d, baseDir);
}

/**
 * Open a disk image for a device: an IDE slot's (openDrive) or a virtio-blk
 * disk's. `what` names the drive in the backend's messages, `subject` in the
 * VmConfigError thrown. A qcow2 image opened read-write is reopenable: a VM
 * folder may put a new overlay in its place between slices (savevm, loadvm).
 */
export function openDisk(what: string, subject: string, d: Pick<DriveSpec, 'file' | 'format' | 'mode' | 'probed'>, baseDir: string): OpenedBlock {
  const path = specPath(baseDir, d.file);
  switch (d.format) {
    case 'raw':
    case 'qcow2':
      try {
        const o = openBlockFile(path, d.mode, what, d.format);
        if (d.probed && o.backend instanceof FileBlockBackend) o.backend.guardProbedFormat = true;
        if (d.format === 'qcow2' && d.mode === 'rw' && !o.backend.readOnly) return reopenable(path, what, d, o);
        return o;
      } catch (e) {
        if (e instanceof BlockBackendError) throw new VmConfigError(subject, e.message.replace(`${what}: `, ''));
        throw e;
      }
    default:
      throw new VmConfigError(subject, `format '${String(d.format)}' is not supported`);
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

/**
 * A qcow2 disk open read-write, whose file a VM folder may replace under it
 * while the machine runs (savevm freezes the image and puts a new overlay
 * in its place; loadvm puts a new overlay over a snapshot's image). The
 * device keeps this backend; reopenDrive() switches what is behind it,
 * between slices. Keyed by the image's absolute path.
 */
class ReopenableBackend implements BlockBackendLike {
  constructor(
    private _inner: OpenedBlock,
    readonly sizeBytes: number,
  ) {}
  get readOnly(): boolean {
    return false;
  }
  read(offset: number, dst: Uint8Array): void {
    this._inner.backend.read(offset, dst);
  }
  write(offset: number, src: Uint8Array): void {
    this._inner.backend.write(offset, src);
  }
  readv(offset: number, dsts: readonly Uint8Array[]): void {
    blockReadv(this._inner.backend, offset, dsts);
  }
  writev(offset: number, srcs: readonly Uint8Array[]): void {
    blockWritev(this._inner.backend, offset, srcs);
  }
  flush(): void {
    this._inner.backend.flush();
  }
  swap(next: OpenedBlock): void {
    const old = this._inner;
    this._inner = next;
    old.close();
  }
  close(): void {
    this._inner.close();
  }
}

type BlockBackendLike = OpenedBlock['backend'];

function reopenable(path: string, what: string, d: Pick<DriveSpec, 'format' | 'mode'>, o: OpenedBlock): OpenedBlock {
  const backend = new ReopenableBackend(o, o.backend.sizeBytes);
  const forget = registerOpenDrive(path, { flush: () => backend.flush(), reopen: () => backend.swap(openBlockFile(path, d.mode, what, d.format)) });
  return {
    backend,
    warning: o.warning,
    close: () => {
      forget();
      backend.close();
    },
  };
}

export { flushOpenDrive, reopenDrive };

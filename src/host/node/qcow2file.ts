/**
 * qcow2 images as files, without reading them as disks: make a new empty
 * image or overlay, read the virtual size and backing name from a header,
 * rename a backing file in place. What VM folders do to images (snapshots,
 * clones) needs only these; apart from block.ts, which opens images as
 * disks through the whole qcow2 reader (storage/qcow2.ts), so that `tsvm
 * clone --linked` and `tsvm snapshot` do not load it.
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { createQcow2, type CreateQcow2Options } from '../../storage/create.js';
import { QCOW2_MAGIC } from '../../storage/qcow2-header.js';
import { NodeFile } from './file.js';
import { BlockBackendError } from './block-error.js';

/**
 * Create a new, empty qcow2 image at `path` (which must not exist), optionally
 * an overlay over `o.backingFile` (stored as given: relative names resolve
 * against the new image's folder). Written and synced before returning
 * (createQcow2: twice, or once when `o.renamedAfter`).
 */
export function createQcow2File(path: string, o: CreateQcow2Options): void {
  const f = new NodeFile(path, openSync(path, 'wx'), false);
  try {
    createQcow2(f, o);
  } finally {
    f.close();
  }
}

/** A qcow2 image's virtual size and backing file name (as stored), read from its header; null for a file that is not qcow2. */
export function qcow2Info(path: string): { size: number; backingFile: string | null } | null {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(32);
    if (readSync(fd, h, 0, 32, 0) < 32 || h.readUInt32BE(0) !== QCOW2_MAGIC) return null;
    const off = Number(h.readBigUInt64BE(8));
    const len = h.readUInt32BE(16);
    const size = Number(h.readBigUInt64BE(24));
    if (off === 0 || len === 0 || len > 1023) return { size, backingFile: null };
    const name = Buffer.alloc(len);
    readSync(fd, name, 0, len, off);
    return { size, backingFile: name.toString('utf8') };
  } finally {
    closeSync(fd);
  }
}

/**
 * Rename a qcow2 image's backing file in place: the new name is written over
 * the old one (same offset) and then the 4-byte length in the header, so a
 * crash leaves the old name or the new one. Only names no longer than the
 * stored one fit; a longer one is refused.
 */
export function setQcow2BackingName(path: string, name: string): void {
  const fd = openSync(path, 'r+');
  try {
    const h = Buffer.alloc(20);
    readSync(fd, h, 0, 20, 0);
    const off = Number(h.readBigUInt64BE(8));
    const len = h.readUInt32BE(16);
    const b = Buffer.from(name, 'utf8');
    if (off === 0 || b.length === 0 || b.length > len) throw new BlockBackendError('UNSUPPORTED', `${path}: the backing name ${name} does not fit where the image stores its backing name`);
    writeSync(fd, b, 0, b.length, off);
    fsyncSync(fd);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    writeSync(fd, l, 0, 4, 16);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

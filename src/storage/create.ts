/** Making new qcow2 images: empty ones and overlays over a backing file. */
import { StorageError, type StorageFile } from './file.js';
import { buildQcow2Header } from './qcow2-header.js';

export interface CreateQcow2Options {
  /** Virtual disk size in bytes (rounded up to whole 512-byte sectors, as qemu-img does). */
  size: number;
  /** log2 of the cluster size, 9..21; default 16 (64 KiB, QEMU's default). */
  clusterBits?: number;
  /** The backing file's name as stored in the image: relative names are resolved against the image's folder. */
  backingFile?: string;
  /** The backing file's format, stored so readers need not probe it. */
  backingFormat?: 'raw' | 'qcow2';
  /**
   * The caller renames the file into place afterwards (or the folder it is
   * in), so nothing opens it half written: one sync at the end does,
   * instead of the tables' and then the header's.
   */
  renamedAfter?: boolean;
}

/**
 * Write a new, empty qcow2 (version 3) image into `file` (which should be
 * empty): the header cluster, the refcount table and blocks counting the
 * metadata, and an all-zero L1 table. The file is synced before returning:
 * the tables first, then the header that makes it a qcow2 image, so a
 * crash never leaves a header over missing tables (one sync with
 * `renamedAfter`).
 */
export function createQcow2(file: StorageFile, o: CreateQcow2Options): void {
  const cb = o.clusterBits ?? 16;
  if (!Number.isInteger(cb) || cb < 9 || cb > 21) throw new StorageError('BAD_IMAGE', `cluster size 2^${cb} is outside 512 bytes .. 2 MiB`);
  if (!Number.isSafeInteger(o.size) || o.size <= 0) throw new StorageError('BAD_IMAGE', `a disk size must be a positive number of bytes (got ${o.size})`);
  if (o.backingFile === undefined && o.backingFormat !== undefined) throw new StorageError('BAD_IMAGE', 'a backing format needs a backing file');
  const size = Math.ceil(o.size / 512) * 512;
  const C = 2 ** cb;
  const l1Size = Math.ceil(size / (C * (C / 8)));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / C));
  const perBlock = C / 2; // 16-bit refcounts
  // header, refcount table (T), refcount blocks (B), L1: find T and B that cover all of them
  let T = 1;
  let B = 1;
  for (;;) {
    const total = 1 + T + B + l1Clusters;
    const nb = Math.ceil(total / perBlock);
    const nt = Math.ceil((nb * 8) / C);
    if (nb === B && nt === T) break;
    B = nb;
    T = nt;
  }
  const total = 1 + T + B + l1Clusters;
  const reftableOffset = C;
  const blocksOffset = (1 + T) * C;
  const l1Offset = (1 + T + B) * C;
  const head = buildQcow2Header({
    clusterBits: cb,
    size,
    l1Size,
    l1TableOffset: l1Offset,
    refcountTableOffset: reftableOffset,
    refcountTableClusters: T,
    backingFile: o.backingFile,
    backingFormat: o.backingFormat,
  });
  const table = new Uint8Array(T * C);
  const tv = new DataView(table.buffer);
  for (let b = 0; b < B; b++) {
    const off = blocksOffset + b * C;
    tv.setUint32(b * 8, Math.floor(off / 0x100000000));
    tv.setUint32(b * 8 + 4, off >>> 0);
  }
  const blocks = new Uint8Array(B * C);
  for (let c = 0; c < total; c++) blocks[c * 2 + 1] = 1;
  // tables first, the header (which makes it a qcow2 file) last
  file.write(l1Offset, new Uint8Array(l1Clusters * C));
  file.write(blocksOffset, blocks);
  file.write(reftableOffset, table);
  if (!o.renamedAfter) file.sync();
  file.write(0, head);
  file.sync();
}

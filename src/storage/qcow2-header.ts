/**
 * The qcow2 header and its extensions (QEMU's docs/interop/qcow2.txt): parsing
 * with every field checked against the file, and building one for a new image.
 * All numbers are big-endian. 64-bit offsets are kept as JS numbers and refused
 * above 2^53 (no real file is that large).
 */
import { utf8Decode, utf8Encode } from '../base/utf8.js';
import { StorageError } from './file.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const V2_HEADER_BYTES = 72;
export const V3_HEADER_BYTES = 104;
/** The header length tsvm writes: v3 fields plus compression_type, padded to 8. */
export const TSVM_HEADER_BYTES = 112;

export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_ENCRYPTION = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1;
export const INCOMPAT_CORRUPT = 2;
export const INCOMPAT_DATA_FILE = 4;
export const INCOMPAT_COMPRESSION = 8;
export const INCOMPAT_EXTL2 = 16;

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Feature bit masks (64-bit). */
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile: string | null;
  backingFormat: string | null;
  /** Names from the feature name table, keyed "incompatible:3", "compatible:0", "autoclear:1". */
  featureNames: Map<string, string>;
}

/** Names in the header are UTF-8; a damaged one is not a crash. */
function decodeName(b: Uint8Array, what: string, name: string): string {
  try {
    return utf8Decode(b);
  } catch {
    throw bad(name, `${what} is not valid UTF-8`);
  }
}
const enc = { encode: utf8Encode };

function u64(v: DataView, at: number, what: string, name: string): number {
  const hi = v.getUint32(at);
  const lo = v.getUint32(at + 4);
  if (hi >= 0x200000) throw new StorageError('BAD_IMAGE', `${name}: qcow2 ${what} (0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}) is beyond any possible file size; the image is damaged`);
  return hi * 0x100000000 + lo;
}

function bad(name: string, msg: string): StorageError {
  return new StorageError('BAD_IMAGE', `${name}: ${msg}; the image is damaged or not a qcow2 file (qemu-img check ${name} may say more)`);
}

/**
 * Parse and check the header from the image's first bytes (`head`, at least
 * the first cluster or the whole file if shorter). `fileSize` bounds every
 * offset. Throws StorageError (BAD_IMAGE or UNSUPPORTED) with the reason.
 */
export function parseQcow2Header(head: Uint8Array, fileSize: number, name: string): Qcow2Header {
  if (head.length < V2_HEADER_BYTES || fileSize < V2_HEADER_BYTES) throw bad(name, `the file is ${fileSize} bytes, shorter than a qcow2 header`);
  const v = new DataView(head.buffer, head.byteOffset, head.length);
  if (v.getUint32(0) !== QCOW2_MAGIC) throw bad(name, 'no qcow2 magic');
  const version = v.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new StorageError('UNSUPPORTED', `${name}: qcow2 version ${version} is not supported (tsvm reads versions 2 and 3); convert it with: qemu-img convert -O qcow2 -o compat=1.1 ${name} new.qcow2`);
  }
  const clusterBits = v.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) throw bad(name, `cluster_bits ${clusterBits} is outside 9..21`);
  const cluster = 2 ** clusterBits;
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(v, 8, 'backing file offset', name),
    backingFileSize: v.getUint32(16),
    clusterBits,
    size: u64(v, 24, 'virtual size', name),
    cryptMethod: v.getUint32(32),
    l1Size: v.getUint32(36),
    l1TableOffset: u64(v, 40, 'L1 table offset', name),
    refcountTableOffset: u64(v, 48, 'refcount table offset', name),
    refcountTableClusters: v.getUint32(56),
    nbSnapshots: v.getUint32(60),
    snapshotsOffset: u64(v, 64, 'snapshot table offset', name),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_BYTES,
    compressionType: 0,
    backingFile: null,
    backingFormat: null,
    featureNames: new Map(),
  };
  if (version === 3) {
    if (head.length < V3_HEADER_BYTES || fileSize < V3_HEADER_BYTES) throw bad(name, 'the file is shorter than a version 3 header');
    h.incompatible = v.getBigUint64(72);
    h.compatible = v.getBigUint64(80);
    h.autoclear = v.getBigUint64(88);
    h.refcountOrder = v.getUint32(96);
    h.headerLength = v.getUint32(100);
    if (h.headerLength < V3_HEADER_BYTES || h.headerLength % 8 !== 0 || h.headerLength > cluster || h.headerLength > head.length) {
      throw bad(name, `header_length ${h.headerLength} is not a multiple of 8 between ${V3_HEADER_BYTES} and the cluster size`);
    }
    if (h.headerLength > 104) h.compressionType = head[104];
  }
  if (h.refcountOrder > 6) throw bad(name, `refcount_order ${h.refcountOrder} is above 6`);
  if (h.cryptMethod !== 0) {
    throw new StorageError('UNSUPPORTED', `${name}: the image is encrypted (crypt_method ${h.cryptMethod}); tsvm does not decrypt images. Decrypt it with qemu-img convert first`);
  }
  // everything in the header cluster must lie inside it and inside the file
  const headLimit = Math.min(cluster, fileSize, head.length);
  parseExtensions(head, h, headLimit, name);

  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize === 0 || h.backingFileSize > 1023) throw bad(name, `backing file name length ${h.backingFileSize} is outside 1..1023`);
    if (h.backingFileOffset + h.backingFileSize > headLimit) throw bad(name, 'the backing file name lies outside the header cluster');
    if (h.backingFileOffset < h.headerLength) throw bad(name, 'the backing file name overlaps the header');
    h.backingFile = decodeName(head.subarray(h.backingFileOffset, h.backingFileOffset + h.backingFileSize), 'the backing file name', name);
  }

  // feature bits
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
  const unknown = h.incompatible & ~BigInt(known);
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let b = 0; b < 64; b++) {
      if ((unknown >> BigInt(b)) & 1n) names.push(h.featureNames.get(`incompatible:${b}`) ?? `bit ${b}`);
    }
    throw new StorageError('UNSUPPORTED', `${name}: the image uses incompatible qcow2 features tsvm does not know (${names.join(', ')}); reading it could return wrong data. Convert it with: qemu-img convert -O qcow2 ${name} new.qcow2`);
  }
  const inc = Number(h.incompatible & 0xffn);
  if (inc & INCOMPAT_DATA_FILE) throw new StorageError('UNSUPPORTED', `${name}: the image keeps its data in an external data file, which tsvm does not support; convert it with: qemu-img convert -O qcow2 ${name} new.qcow2`);
  if (inc & INCOMPAT_EXTL2) throw new StorageError('UNSUPPORTED', `${name}: the image uses extended L2 entries (subclusters), which tsvm does not support; convert it with: qemu-img convert -O qcow2 ${name} new.qcow2`);
  if ((inc & INCOMPAT_COMPRESSION) === 0 && h.compressionType !== 0) throw bad(name, `compression_type ${h.compressionType} is set without the compression type feature bit`);
  if (h.compressionType !== 0) {
    throw new StorageError('UNSUPPORTED', `${name}: the image's compressed clusters use ${h.compressionType === 1 ? 'zstd' : `compression type ${h.compressionType}`}; tsvm reads only zlib (deflate). Convert it with: qemu-img convert -O qcow2 -o compression_type=zlib ${name} new.qcow2`);
  }
  if (h.version === 2 && h.refcountOrder !== 4) throw bad(name, 'a version 2 image must have 16-bit refcounts');
  return h;
}

function parseExtensions(head: Uint8Array, h: Qcow2Header, limit: number, name: string): void {
  const v = new DataView(head.buffer, head.byteOffset, head.length);
  let at = h.headerLength;
  // QEMU writes extensions only when there is room; a v2 image may have none and start the backing name at 72
  while (at + 8 <= limit) {
    if (h.backingFileOffset !== 0 && at >= h.backingFileOffset) break;
    const type = v.getUint32(at);
    const len = v.getUint32(at + 4);
    if (type === EXT_END) return;
    const start = at + 8;
    if (len > limit - start) throw bad(name, `header extension 0x${type.toString(16)} at byte ${at} runs past the header cluster`);
    const data = head.subarray(start, start + len);
    if (type === EXT_BACKING_FORMAT) {
      h.backingFormat = decodeName(data, 'the backing file format name', name);
    } else if (type === EXT_FEATURE_TABLE) {
      for (let i = 0; i + 48 <= data.length; i += 48) {
        const kind = ['incompatible', 'compatible', 'autoclear'][data[i]];
        if (!kind) continue;
        const raw = data.subarray(i + 2, i + 48);
        const nul = raw.indexOf(0);
        h.featureNames.set(`${kind}:${data[i + 1]}`, decodeName(nul >= 0 ? raw.subarray(0, nul) : raw, 'a feature name', name));
      }
    } else if (type === EXT_ENCRYPTION) {
      throw new StorageError('UNSUPPORTED', `${name}: the image is encrypted (LUKS); tsvm does not decrypt images`);
    }
    // bitmaps and unknown extensions are ignored (the spec lets readers skip them)
    at = start + Math.ceil(len / 8) * 8;
  }
  if (h.version === 3 && at < limit && h.backingFileOffset === 0) {
    // ran out of room without an end marker: only legal when the cluster is exactly full
    throw bad(name, 'the header extensions have no end marker');
  }
}

/** The bytes of a new image's header cluster (header, backing format, feature table, backing name). */
export function buildQcow2Header(o: {
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  backingFile?: string;
  backingFormat?: string;
}): Uint8Array {
  const cluster = 2 ** o.clusterBits;
  const out = new Uint8Array(cluster);
  const v = new DataView(out.buffer);
  const put64 = (at: number, n: number) => {
    v.setUint32(at, Math.floor(n / 0x100000000));
    v.setUint32(at + 4, n >>> 0);
  };
  v.setUint32(0, QCOW2_MAGIC);
  v.setUint32(4, 3);
  v.setUint32(20, o.clusterBits);
  put64(24, o.size);
  v.setUint32(36, o.l1Size);
  put64(40, o.l1TableOffset);
  put64(48, o.refcountTableOffset);
  v.setUint32(56, o.refcountTableClusters);
  v.setUint32(96, 4); // 16-bit refcounts, as qemu-img makes them
  v.setUint32(100, TSVM_HEADER_BYTES);
  let at = TSVM_HEADER_BYTES;
  const ext = (type: number, data: Uint8Array) => {
    v.setUint32(at, type);
    v.setUint32(at + 4, data.length);
    out.set(data, at + 8);
    at += 8 + Math.ceil(data.length / 8) * 8;
  };
  if (o.backingFile !== undefined && o.backingFormat) ext(EXT_BACKING_FORMAT, enc.encode(o.backingFormat));
  const features: [number, number, string][] = [
    [0, 0, 'dirty bit'],
    [0, 1, 'corrupt bit'],
    [0, 2, 'external data file'],
    [0, 3, 'compression type'],
    [0, 4, 'extended L2 entries'],
    [1, 0, 'lazy refcounts'],
    [2, 0, 'bitmaps'],
    [2, 1, 'raw external data'],
  ];
  const table = new Uint8Array(features.length * 48);
  features.forEach(([kind, bit, label], i) => {
    table[i * 48] = kind;
    table[i * 48 + 1] = bit;
    table.set(enc.encode(label), i * 48 + 2);
  });
  ext(EXT_FEATURE_TABLE, table);
  at += 8; // end marker (zeros)
  if (o.backingFile !== undefined) {
    const nameBytes = enc.encode(o.backingFile);
    if (nameBytes.length === 0 || nameBytes.length > 1023) throw new StorageError('BAD_IMAGE', `the backing file name must be 1 to 1023 bytes long (got ${nameBytes.length})`);
    if (at + nameBytes.length > cluster) throw new StorageError('BAD_IMAGE', 'the backing file name does not fit in the header cluster; use a larger cluster size or a shorter name');
    put64(8, at);
    v.setUint32(16, nameBytes.length);
    out.set(nameBytes, at);
  }
  return out;
}

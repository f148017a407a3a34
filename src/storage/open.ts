/** Telling an image's format by its magic, and opening an image with its chain of backing files. */
import { readFull, StorageError, type DiskImage, type StorageFile, type StorageHost } from './file.js';
import { parseQcow2Header, QCOW2_MAGIC } from './qcow2-header.js';
import { Qcow2Image } from './qcow2.js';
import { RawImage } from './raw.js';

export type ImageFormat = 'raw' | 'qcow2';

/** Formats tsvm recognises but does not read: refused rather than shown to a guest as raw bytes. */
const FOREIGN: [string, (b: Uint8Array) => boolean][] = [
  ['vmdk', (b) => ascii(b, 0, 'KDMV') || ascii(b, 0, '# Disk DescriptorFile')],
  ['vdi', (b) => b[0x40] === 0x7f && b[0x41] === 0x10 && b[0x42] === 0xda && b[0x43] === 0xbe],
  ['vhdx', (b) => ascii(b, 0, 'vhdxfile')],
  ['vpc (vhd)', (b) => ascii(b, 0, 'conectix')],
  ['qed', (b) => ascii(b, 0, 'QED\0')],
];

function ascii(b: Uint8Array, at: number, s: string): boolean {
  if (b.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** What the first bytes of a file say it is: 'qcow2', 'raw', or the name of a format tsvm does not read. */
export function detectFormat(head: Uint8Array): ImageFormat | { foreign: string } {
  if (head.length >= 8) {
    const v = new DataView(head.buffer, head.byteOffset, head.length);
    if (v.getUint32(0) === QCOW2_MAGIC) {
      const version = v.getUint32(4);
      if (version === 2 || version === 3) return 'qcow2';
      if (version === 1) return { foreign: 'qcow (version 1)' };
      return 'qcow2'; // a qcow2 of a version we do not read: the opener says so clearly
    }
  }
  for (const [name, test] of FOREIGN) if (test(head)) return { foreign: name };
  return 'raw';
}

/** The format of an open file, from its first bytes. */
export function probeFormat(file: StorageFile): ImageFormat | { foreign: string } {
  const head = new Uint8Array(512);
  readFull(file, 0, head);
  return detectFormat(head);
}

export interface OpenImageOptions {
  /** The format; probed from the magic when absent. */
  format?: ImageFormat;
  readOnly: boolean;
  /** fsync barriers in qcow2 allocating writes (default true; see Qcow2Options). */
  barriers?: boolean;
}

/** How deep a chain of backing files may go. */
export const MAX_BACKING_CHAIN = 16;

/**
 * Open the image `name` through `host`: a raw or qcow2 image, with its
 * backing files opened read-only (relative backing names resolved against the
 * folder of the image that names them, as QEMU does). Throws StorageError.
 */
export function openImage(host: StorageHost, name: string, opts: OpenImageOptions): DiskImage {
  return openChain(host, name, opts, [name]);
}

function openChain(host: StorageHost, name: string, opts: OpenImageOptions, chain: string[]): DiskImage {
  const file = host.open(name, !opts.readOnly);
  try {
    let format = opts.format;
    if (!format) {
      const f = probeFormat(file);
      if (typeof f !== 'string') {
        throw new StorageError('UNSUPPORTED', `${name} is a ${f.foreign} image, which tsvm does not read; convert it with: qemu-img convert -O qcow2 ${name} ${name.replace(/\.[^./]*$/, '')}.qcow2`);
      }
      format = f;
    }
    if (format === 'raw') return new RawImage(file);
    const size = file.size();
    const head = new Uint8Array(Math.min(size, 1 << 21));
    readFull(file, 0, head);
    const h = parseQcow2Header(head, size, name);
    let backing: DiskImage | null = null;
    if (h.backingFile !== null) {
      if (chain.length >= MAX_BACKING_CHAIN) {
        throw new StorageError('UNSUPPORTED', `${name}: the chain of backing files is longer than ${MAX_BACKING_CHAIN} (${chain.join(' -> ')}); commit some of it with qemu-img commit`);
      }
      const bname = host.resolve(name, h.backingFile);
      if (chain.includes(bname)) throw new StorageError('BAD_IMAGE', `${name}: the backing files form a loop (${[...chain, bname].join(' -> ')})`);
      const bf = h.backingFormat;
      if (bf !== null && bf !== 'raw' && bf !== 'qcow2') {
        throw new StorageError('UNSUPPORTED', `${name}: its backing file ${h.backingFile} is in ${bf} format, which tsvm does not read`);
      }
      try {
        backing = openChain(host, bname, { format: bf ?? undefined, readOnly: true, barriers: opts.barriers }, [...chain, bname]);
      } catch (e) {
        if (e instanceof StorageError && e.code === 'NOT_FOUND') {
          throw new StorageError('NOT_FOUND', `${name}: its backing file ${h.backingFile} (${bname}) cannot be found; put it back, or point the image at its new place with: qemu-img rebase -u -b NEWPATH ${name}`);
        }
        throw e;
      }
    }
    try {
      return Qcow2Image.open(file, { readOnly: opts.readOnly, backing, inflateRaw: host.inflateRaw?.bind(host), barriers: opts.barriers }, h);
    } catch (e) {
      backing?.close();
      throw e;
    }
  } catch (e) {
    file.close();
    throw e;
  }
}

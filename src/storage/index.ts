/** Disk image formats over an abstract file (docs/storage.md). */
export { MemoryFile, readFull, readFullv, StorageError, writeAllv, type DiskImage, type StorageErrorCode, type StorageFile, type StorageHost } from './file.js';
export { IovCursor, iovLength, type IoVec } from './iovec.js';
export { RawImage } from './raw.js';
export { Qcow2Image, type Qcow2Options } from './qcow2.js';
export { parseQcow2Header, QCOW2_MAGIC, type Qcow2Header } from './qcow2-header.js';
export { createQcow2, type CreateQcow2Options } from './create.js';
export { detectFormat, MAX_BACKING_CHAIN, openImage, probeFormat, type ImageFormat, type OpenImageOptions } from './open.js';

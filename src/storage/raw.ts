/** A raw image: the file's bytes are the disk's bytes. */
import { readFull, readFullv, StorageError, writeAllv, type DiskImage, type StorageFile } from './file.js';
import { IovCursor, iovFill, iovLength, type IoVec } from './iovec.js';

export class RawImage implements DiskImage {
  readonly format = 'raw';
  readonly sizeBytes: number;
  readonly readOnly: boolean;

  constructor(readonly file: StorageFile) {
    this.sizeBytes = file.size();
    this.readOnly = file.readOnly;
  }

  read(offset: number, dst: Uint8Array): void {
    if (offset >= this.sizeBytes) {
      dst.fill(0);
      return;
    }
    const n = Math.min(dst.length, this.sizeBytes - offset);
    readFull(this.file, offset, dst.subarray(0, n));
    if (n < dst.length) dst.fill(0, n);
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.file.name} is opened read-only`);
    if (offset + src.length > this.sizeBytes) {
      throw new StorageError('IO', `${this.file.name}: write of ${src.length} bytes at ${offset} goes past the end of the ${this.sizeBytes}-byte disk`);
    }
    this.file.write(offset, src);
  }

  /** One readv of the file for the whole list; what lies past the disk's end reads as zeros. */
  readv(offset: number, dsts: IoVec): void {
    const total = iovLength(dsts);
    if (offset + total <= this.sizeBytes) {
      readFullv(this.file, offset, dsts);
      return;
    }
    const cur = new IovCursor(dsts);
    if (offset < this.sizeBytes) readFullv(this.file, offset, cur.take(this.sizeBytes - offset));
    iovFill(cur.rest(), 0);
  }

  writev(offset: number, srcs: IoVec): void {
    if (this.readOnly) throw new StorageError('READ_ONLY', `${this.file.name} is opened read-only`);
    const total = iovLength(srcs);
    if (offset + total > this.sizeBytes) {
      throw new StorageError('IO', `${this.file.name}: write of ${total} bytes at ${offset} goes past the end of the ${this.sizeBytes}-byte disk`);
    }
    writeAllv(this.file, offset, srcs);
  }

  flush(): void {
    if (!this.readOnly) this.file.sync();
  }

  close(): void {
    this.file.close();
  }
}

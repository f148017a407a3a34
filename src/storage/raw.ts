/** A raw image: the file's bytes are the disk's bytes. */
import { readFull, StorageError, type DiskImage, type StorageFile } from './file.js';

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

  flush(): void {
    if (!this.readOnly) this.file.sync();
  }

  close(): void {
    this.file.close();
  }
}

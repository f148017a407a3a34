/**
 * An ISO image uploaded to the daemon, streamed to a file as it arrives:
 * never held in memory, bounded by Content-Length and the daemon's upload
 * limit, checked for the ISO 9660 signature, and removed again on any
 * failure. The VM folder then takes it in as its CD-ROM (host.create).
 */
import { createWriteStream, mkdirSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Default largest upload (bytes): a DVD image. */
export const DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 ** 3;
/** Media types an ISO upload may carry. */
export const ISO_TYPES = ['application/octet-stream', 'application/x-iso9660-image'];

/** An upload refused: the HTTP status and a message saying what to do. */
export class UploadError extends Error {
  constructor(
    readonly status: 400 | 411 | 413 | 415,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where uploads are staged: a dot-folder of the VM directory, so it is never listed as a VM. */
export function uploadDir(root: string): string {
  return join(root, '.uploads');
}

/** Check the request's headers before a byte of the body is read; returns the announced length. */
export function checkUploadHeaders(req: IncomingMessage, maxBytes: number): number {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (!ISO_TYPES.includes(type)) throw new UploadError(415, 'bad-media-type', `an ISO upload is ${ISO_TYPES.join(' or ')}, not '${type || 'unspecified'}'`);
  const lenText = req.headers['content-length'];
  if (lenText === undefined) throw new UploadError(411, 'length-required', 'an ISO upload needs a Content-Length (send the file, not a chunked stream)');
  const len = Number(lenText);
  if (!Number.isSafeInteger(len) || len < 0) throw new UploadError(400, 'bad-length', `Content-Length '${lenText}' is not a size`);
  if (len > maxBytes) throw new UploadError(413, 'too-large', `the image is ${len} bytes; this daemon accepts uploads up to ${maxBytes} bytes (tsvm serve --max-upload-mib)`);
  if (len < 0x8006) throw new UploadError(400, 'not-iso', `${len} bytes is too small for an ISO 9660 image`);
  return len;
}

/**
 * Stream the body into a new file under the upload folder; `progress(done,
 * total)` as it comes. Resolves with the file's path once all `length` bytes
 * are there and the image has an ISO 9660 volume descriptor.
 */
export function receiveIso(req: IncomingMessage, root: string, length: number, progress: (done: number, total: number) => void): Promise<string> {
  const dir = uploadDir(root);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${randomBytes(8).toString('hex')}.iso`);
  return new Promise((resolve, reject) => {
    const out = createWriteStream(path, { mode: 0o600 });
    let got = 0;
    let failed = false;
    let lastPercent = -1;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(out);
      out.destroy();
      rmSync(path, { force: true });
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      got += c.length;
      if (got > length) return fail(new UploadError(400, 'bad-length', `the body is longer than its Content-Length of ${length} bytes`));
      const percent = Math.floor((got * 100) / length);
      if (percent !== lastPercent) {
        lastPercent = percent;
        progress(got, length);
      }
    });
    req.on('aborted', () => fail(new UploadError(400, 'aborted', `the upload stopped after ${got} of ${length} bytes`)));
    req.on('error', (e) => fail(e));
    out.on('error', (e) => fail(new Error(`cannot store the upload: ${e.message}`)));
    out.on('finish', () => {
      if (failed) return;
      if (got !== length) return fail(new UploadError(400, 'bad-length', `the upload ended after ${got} of ${length} bytes`));
      if (!isIso9660(path)) return fail(new UploadError(400, 'not-iso', 'the file is not an ISO 9660 image (no CD001 volume descriptor at sector 16)'));
      resolve(path);
    });
    req.pipe(out);
  });
}

/** ISO 9660: the volume descriptor set starts at sector 16 (byte 32768) with a type byte and "CD001". */
function isIso9660(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(5);
    return readSync(fd, b, 0, 5, 0x8001) === 5 && b.toString('latin1') === 'CD001';
  } finally {
    closeSync(fd);
  }
}

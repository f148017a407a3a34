/**
 * Lists of buffers treated as one (an I/O vector): what a virtio-blk request's
 * guest pages are, handed to the image and the file as one readv/writev.
 */

export type IoVec = readonly Uint8Array[];

/** Total bytes of a list of buffers. */
export function iovLength(v: IoVec): number {
  let n = 0;
  for (const b of v) n += b.length;
  return n;
}

/** Walks a list of buffers front to back, handing out consecutive pieces of it. */
export class IovCursor {
  private _i = 0;
  private _at = 0;

  constructor(private readonly _v: IoVec) {}

  /** The next `len` bytes (fewer at the end of the list) as views into the buffers, appended to `out`. */
  take(len: number, out: Uint8Array[] = []): Uint8Array[] {
    const v = this._v;
    while (len > 0 && this._i < v.length) {
      const b = v[this._i];
      const n = Math.min(b.length - this._at, len);
      if (n > 0) out.push(b.subarray(this._at, this._at + n));
      this._at += n;
      len -= n;
      if (this._at >= b.length) {
        this._i++;
        this._at = 0;
      }
    }
    return out;
  }

  /** Everything not yet taken. */
  rest(): Uint8Array[] {
    return this.take(Number.MAX_SAFE_INTEGER);
  }
}

/** Set every byte of the buffers to `value`. */
export function iovFill(v: IoVec, value: number): void {
  for (const b of v) b.fill(value);
}

/** Copy `src` into the buffers in order (as many bytes as both have). */
export function iovCopyIn(v: IoVec, src: Uint8Array): void {
  let k = 0;
  for (const b of v) {
    if (k >= src.length) break;
    const n = Math.min(b.length, src.length - k);
    b.set(src.subarray(k, k + n));
    k += n;
  }
}

/** Copy the buffers into `dst` at `at`, in order. */
export function iovCopyOut(v: IoVec, dst: Uint8Array, at = 0): void {
  for (const b of v) {
    dst.set(b, at);
    at += b.length;
  }
}

/** True when every byte is 0. */
export function iovIsZero(v: IoVec): boolean {
  for (const b of v) for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** The list with its first `n` bytes dropped (views, no copy). */
export function iovSkip(v: IoVec, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of v) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

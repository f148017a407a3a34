/**
 * How Ethernet frames travel over a byte stream between tsvm processes (and
 * to and from QEMU): each frame is a 4-byte big-endian length followed by
 * the frame, without FCS. This is the framing of QEMU's `-netdev socket`
 * (TCP) and `-netdev stream` (TCP or UNIX socket) backends, so either end
 * can be a QEMU.
 */

/** Largest frame accepted from a peer: a 64 KiB TSO frame and then some. */
export const MAX_STREAM_FRAME = 0x11000;

/** One frame with its length prefix, ready to write. */
export function encodeFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.length);
  out[0] = frame.length >>> 24;
  out[1] = (frame.length >>> 16) & 0xff;
  out[2] = (frame.length >>> 8) & 0xff;
  out[3] = frame.length & 0xff;
  out.set(frame, 4);
  return out;
}

/** Cuts a byte stream back into frames, whatever the chunking. */
export class FrameReader {
  private _rx = new Uint8Array(0);

  /**
   * Add stream bytes; calls `onFrame` with each whole frame (a fresh array).
   * Returns the announced length of a frame over MAX_STREAM_FRAME (the peer
   * speaks something else: drop the connection), or 0.
   */
  push(d: Uint8Array, onFrame: (f: Uint8Array) => void): number {
    let b: Uint8Array;
    if (this._rx.length === 0) b = d;
    else {
      b = new Uint8Array(this._rx.length + d.length);
      b.set(this._rx);
      b.set(d, this._rx.length);
    }
    let o = 0;
    while (b.length - o >= 4) {
      const n = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
      if (n > MAX_STREAM_FRAME) {
        this._rx = new Uint8Array(0);
        return n;
      }
      if (b.length - o - 4 < n) break;
      onFrame(b.slice(o + 4, o + 4 + n));
      o += 4 + n;
    }
    this._rx = b.slice(o);
    return 0;
  }

  reset(): void {
    this._rx = new Uint8Array(0);
  }
}

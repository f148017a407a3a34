/**
 * Character-device backends on Node: `stdio`, `file:PATH`, `none`, as QEMU's
 * -debugcon / -serial take them. Output is buffered and flushed at slice ends
 * and on exit, so a chatty guest does not make one syscall per byte.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { CharSink } from '../../devices/backends.js';

export class CharSpecError extends Error {}

export interface HostCharSink extends CharSink {
  flush(): void;
  close(): void;
}

class FdSink implements HostCharSink {
  private readonly _buf = new Uint8Array(65536);
  private _len = 0;
  constructor(
    private readonly _fd: number,
    private readonly _owned: boolean,
  ) {}
  write(byte: number): void {
    this._buf[this._len++] = byte;
    if (this._len === this._buf.length) this.flush();
  }
  flush(): void {
    let off = 0;
    while (off < this._len) off += writeSync(this._fd, this._buf, off, this._len - off);
    this._len = 0;
  }
  close(): void {
    this.flush();
    if (this._owned) closeSync(this._fd);
  }
}

class NullSink implements HostCharSink {
  write(): void {}
  flush(): void {}
  close(): void {}
}

/** Open a sink from a QEMU-style spec. The file is created (truncated) now, so errors show before the VM starts. */
export function openCharSink(spec: string, what: string): HostCharSink {
  if (spec === 'stdio') return new FdSink(1, false);
  if (spec === 'none' || spec === 'null') return new NullSink();
  if (spec.startsWith('file:')) {
    const path = spec.slice(5);
    if (!path) throw new CharSpecError(`${what}: 'file:' needs a path, as in file:/tmp/out.txt`);
    try {
      return new FdSink(openSync(path, 'w'), true);
    } catch (e) {
      throw new CharSpecError(`${what}: cannot open ${path} for writing: ${(e as Error).message}`);
    }
  }
  throw new CharSpecError(`${what}: '${spec}' is not a character device; use stdio, file:PATH or none`);
}

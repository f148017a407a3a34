/**
 * A writer for the "newc" cpio format, the format of Linux initramfs archives
 * (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
 * ASCII header per entry, the name, the data, each padded to 4 bytes, and a
 * TRAILER!!! entry at the end.
 */
export const enum CpioMode {
  DIR = 0o040000,
  FILE = 0o100000,
  SYMLINK = 0o120000,
  CHAR = 0o020000,
}

export interface CpioEntry {
  name: string;
  mode: number; // type | permissions
  data?: Uint8Array; // file contents or symlink target
  rdevMajor?: number;
  rdevMinor?: number;
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export function writeCpio(entries: CpioEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    size += b.length;
  };
  const pad = () => {
    const n = (4 - (size % 4)) % 4;
    if (n) push(Buffer.alloc(n));
  };
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = (e as CpioEntry).data ?? new Uint8Array(0);
    const name = Buffer.from(e.name + '\0');
    const isDir = (e.mode & 0o170000) === CpioMode.DIR;
    const header =
      '070701' +
      hex8(e.name === 'TRAILER!!!' ? 0 : ino++) +
      hex8(e.mode) +
      hex8(0) +
      hex8(0) +
      hex8(isDir ? 2 : 1) +
      hex8(mtime) +
      hex8(data.length) +
      hex8(0) +
      hex8(0) +
      hex8((e as CpioEntry).rdevMajor ?? 0) +
      hex8((e as CpioEntry).rdevMinor ?? 0) +
      hex8(name.length) +
      hex8(0);
    push(Buffer.from(header, 'ascii'));
    push(name);
    pad();
    if (data.length) {
      push(Buffer.from(data.buffer, data.byteOffset, data.length));
      pad();
    }
  }
  return Buffer.concat(parts, size);
}

/** Category logging. Categories are bits; the mask is set once by the host (CLI flags). */
export const enum Log {
  CPU = 1 << 0,
  IO = 1 << 1,
  MEM = 1 << 2,
  INT = 1 << 3,
  BOARD = 1 << 4,
}

let mask = 0;
let sink: (line: string) => void = () => {};

/** Enable categories and choose where lines go (the host passes stderr). */
export function setLogMask(m: number, out?: (line: string) => void): void {
  mask = m;
  if (out) sink = out;
}

export function logEnabled(cat: Log): boolean {
  return (mask & cat) !== 0;
}

/** Log a line if its category is on. Callers on hot paths guard with logEnabled() first. */
export function log(cat: Log, msg: string): void {
  if ((mask & cat) !== 0) sink(msg);
}

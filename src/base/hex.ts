/** Formatting helpers for logs, monitors and dumps (never on the hot path). */
export function hex(v: number, digits = 8): string {
  return (v >>> 0).toString(16).toUpperCase().padStart(digits, '0');
}

/** Parse a size with an optional K/M/G suffix (binary units), as QEMU's -m does (no suffix = MiB). */
export function parseSize(text: string, defaultUnit = 1024 * 1024): number | undefined {
  const m = /^(\d+)([KMGkmg])?[iI]?[bB]?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ? { k: 1024, m: 1024 * 1024, g: 1024 * 1024 * 1024 }[m[2].toLowerCase() as 'k' | 'm' | 'g'] : defaultUnit;
  return n * unit;
}

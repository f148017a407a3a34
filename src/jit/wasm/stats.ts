/**
 * Dev-only: which instructions keep guest code out of the wasm regions.
 * With TSVM_WASM_STATS=1 in the environment, the wasm tier does not fall back
 * to its block cache, so every instruction that no region runs comes through
 * WasmCache.enter once and is counted here by why (no region on the page,
 * the region's mode/segment checks failed, an instruction the compiler does
 * not take, an entry that is not a label) and by opcode. The table is printed
 * to stderr when the process exits. It changes nothing a guest can see (the
 * interpreter runs what the blocks would have), only the speed.
 */
import { takes } from './region.js';

type Env = {
  process?: {
    env?: Record<string, string | undefined>;
    on?(ev: string, f: () => void): void;
    stderr?: { write(s: string): void };
    getBuiltinModule?(id: string): unknown;
  };
};
const G = globalThis as Env;

export const WASM_STATS = G.process?.env?.['TSVM_WASM_STATS'] === '1';
/** Dev-only: TSVM_WASM_NAMES=1 names each region's function after its EIP page (p81c1000), so that `perf` with --perf-basic-prof tells the regions apart. */
export const WASM_NAMES = G.process?.env?.['TSVM_WASM_NAMES'] === '1';

/** Per reason: counts by (host page << 12 | offset), kept as numbers so counting stays cheap; named at exit. */
const counts = new Map<string, Map<number, number>>();
/** EIP page of each host page seen (for the decoder's branch targets). */
const eipPages = new Map<number, number>();
let memRef: Uint8Array | null = null;
let total = 0;

/** Opcodes whose ModRM reg field selects the operation. */
const GROUPS = new Set([0x80, 0x81, 0x83, 0x8f, 0xc0, 0xc1, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3, 0xf6, 0xf7, 0xfe, 0xff, 0x100, 0x101, 0x1ba, 0x1c7]);
const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/** "66 0f b7 /r"-style name of the instruction at host offset o. */
export function describe(mem: Uint8Array, o: number): string {
  const parts: string[] = [];
  let n = 0;
  while (PREFIXES.has(mem[o]) && n++ < 4) parts.push(mem[o++].toString(16).padStart(2, '0'));
  let key = mem[o++];
  if (key === 0x0f) {
    parts.push('0f');
    key = 0x100 | mem[o++];
  }
  parts.push((key & 0xff).toString(16).padStart(2, '0'));
  if (GROUPS.has(key)) parts.push(`/${(mem[o] >> 3) & 7}${mem[o] >> 6 === 3 ? 'r' : 'm'}`);
  return parts.join(' ');
}

/** Count one instruction run outside the regions: `why` is the reason, `hostPage`/`off` where it is (-1: unknown). */
export function note(why: string, mem: Uint8Array, hostPage: number, off: number, eipPage: number): void {
  let m = counts.get(why);
  if (m === undefined) counts.set(why, (m = new Map()));
  const k = hostPage < 0 ? -1 : hostPage * 4096 + off;
  m.set(k, (m.get(k) ?? 0) + 1);
  if (hostPage >= 0) eipPages.set(hostPage, eipPage);
  memRef = mem;
  if (total++ === 0) G.process?.on?.('exit', report);
}

function report(): void {
  const mem = memRef!;
  const named = new Map<string, number>();
  const byWhy = new Map<string, number>();
  for (const [why0, m] of counts) {
    for (const [k, n] of m) {
      let why = why0;
      let name = '';
      if (k >= 0) {
        const hp = Math.floor(k / 4096);
        const off = k % 4096;
        if (why === 'miss') why = takes(mem, hp * 4096, off, eipPages.get(hp) ?? 0) ? 'entry' : 'exit';
        name = describe(mem, hp * 4096 + off);
        if (why.startsWith('js exit') || why === 'segs/left') name += ` at ${((eipPages.get(hp) ?? 0) + off >>> 0).toString(16)}`;
      }
      byWhy.set(why, (byWhy.get(why) ?? 0) + n);
      const key = `${why} ${name}`;
      named.set(key, (named.get(key) ?? 0) + n);
    }
  }
  const rows = [...named.entries()].sort((a, b) => b[1] - a[1]);
  const lines = [`wasm stats: ${total} instructions outside regions`];
  for (const [w, n] of byWhy) lines.push(`  ${w}: ${n} (${((n / total) * 100).toFixed(1)}%)`);
  for (const [k, n] of rows.slice(0, 100)) lines.push(`  ${((n / total) * 100).toFixed(2).padStart(6)}%  ${n}  ${k}`);
  // TSVM_WASM_STATS_OUT=file: there instead of stderr (bench/linux keeps the guest's stderr to itself)
  const out = G.process?.env?.['TSVM_WASM_STATS_OUT'];
  const fs = out ? (G.process?.getBuiltinModule?.('fs') as { writeFileSync(p: string, s: string): void } | undefined) : undefined;
  if (out && fs) fs.writeFileSync(out, lines.join('\n') + '\n');
  else G.process?.stderr?.write(lines.join('\n') + '\n');
}

/**
 * Dev-only: the memory operand of the instruction at host offset `o` (32-bit
 * addressing, ModRM forms only), as a linear address from the registers and
 * segment bases now; null for other forms. Used to say why a region's inline
 * TLB lookup gave up on an access (`slowWhy`).
 */
export function operandLin(mem: Uint8Array, o: number, reg32: Int32Array, segBase: Int32Array): { lin: number; size: number } | null {
  let seg = -1;
  let o16 = false;
  for (let n = 0; n < 4 && PREFIXES.has(mem[o]); n++, o++) {
    const p = mem[o];
    if (p === 0x66) o16 = true;
    else if (p === 0x67) return null;
    else if (p === 0x26) seg = 0;
    else if (p === 0x2e) seg = 1;
    else if (p === 0x36) seg = 2;
    else if (p === 0x3e) seg = 3;
    else if (p === 0x64) seg = 4;
    else if (p === 0x65) seg = 5;
  }
  let op = mem[o++];
  if (op === 0x0f) op = 0x100 | mem[o++];
  // sizes of the forms the histograms name; others: 4 (or 2 with 0x66)
  const size = op === 0x1b6 || op === 0x1be || (op < 0x100 && (op & 0xc7) <= 0x02 && (op & 1) === 0) || op === 0x84 || op === 0x86 || op === 0x88 || op === 0x8a ? 1 : op === 0x1b7 || op === 0x1bf || o16 ? 2 : 4;
  const m = mem[o++];
  if (m >= 0xc0) return null;
  const mod = m >> 6;
  const rm = m & 7;
  let off = 0;
  let ss = false;
  if (rm === 4) {
    const sib = mem[o++];
    const base = sib & 7;
    const idx = (sib >> 3) & 7;
    if (base === 5 && mod === 0) {
      off = mem[o] | (mem[o + 1] << 8) | (mem[o + 2] << 16) | (mem[o + 3] << 24);
      o += 4;
    } else {
      off = reg32[base];
      ss = base === 4 || base === 5;
    }
    if (idx !== 4) off = (off + (reg32[idx] << (sib >> 6))) | 0;
  } else if (rm === 5 && mod === 0) {
    off = mem[o] | (mem[o + 1] << 8) | (mem[o + 2] << 16) | (mem[o + 3] << 24);
    o += 4;
  } else {
    off = reg32[rm];
    ss = rm === 5;
  }
  if (mod === 1) off = (off + ((mem[o] << 24) >> 24)) | 0;
  else if (mod === 2) off = (off + (mem[o] | (mem[o + 1] << 8) | (mem[o + 2] << 16) | (mem[o + 3] << 24))) | 0;
  if (seg < 0) seg = ss ? 2 : 3;
  return { lin: (segBase[seg] + off) | 0, size };
}

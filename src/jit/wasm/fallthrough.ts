/**
 * Lengths of the instructions the region compiler does not take but that go
 * on to the next instruction (system instructions, segment loads, I/O, x87,
 * prefixed forms it refuses), so the decoder can continue behind them: the
 * region exits at such an instruction, the interpreter runs it, and the next
 * one is a label of the region, entered again without a recompile.
 *
 * A wrong length here costs only code: a label at an offset execution never
 * reaches is never entered, and every label's code is decoded from its own
 * offset. Control transfers (and anything unknown) return 0: nothing follows.
 */

/** Bytes after the opcode of a 32-bit ModRM operand at o. */
function modrm32(mem: Uint8Array, o: number): number {
  const m = mem[o];
  const mod = m >> 6;
  const rm = m & 7;
  if (mod === 3) return 1;
  let len = 1;
  if (rm === 4) {
    len++;
    if (mod === 0 && (mem[o + 1] & 7) === 5) len += 4;
  } else if (mod === 0 && rm === 5) len += 4;
  if (mod === 1) len += 1;
  else if (mod === 2) len += 4;
  return len;
}

/** Bytes after the opcode of a 16-bit ModRM operand at o (address-size prefix). */
function modrm16(mem: Uint8Array, o: number): number {
  const m = mem[o];
  const mod = m >> 6;
  if (mod === 3) return 1;
  if (mod === 0) return (m & 7) === 6 ? 3 : 1;
  return mod === 1 ? 2 : 3;
}

// one-byte opcodes: how the operands follow (0: none, M: ModRM, and immediates)
const NONE = 1,
  M = 2,
  I8 = 3,
  MI8 = 4,
  IV = 5,
  MIV = 6,
  I16I8 = 7;
const ONE = new Uint8Array(256);
const TWO = new Uint8Array(256);
function set(t: Uint8Array, kind: number, ...ops: number[]): void {
  for (const o of ops) t[o] = kind;
}
for (let k = 0; k < 0x40; k += 8) {
  set(ONE, M, k, k + 1, k + 2, k + 3);
  set(ONE, I8, k + 4);
  set(ONE, IV, k + 5);
}
set(ONE, NONE, 0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f);
for (let k = 0x40; k < 0x62; k++) ONE[k] = NONE;
set(ONE, M, 0x62, 0x63, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0xc4, 0xc5, 0xd0, 0xd1, 0xd2, 0xd3);
for (let k = 0xd8; k <= 0xdf; k++) ONE[k] = M; // x87
set(ONE, IV, 0x68, 0xa9);
set(ONE, MIV, 0x69, 0x81, 0xc7);
set(ONE, I8, 0x6a, 0xa8, 0xd4, 0xd5, 0xe4, 0xe5, 0xe6, 0xe7);
set(ONE, MI8, 0x6b, 0x80, 0x82, 0x83, 0xc0, 0xc1, 0xc6);
set(ONE, NONE, 0x6c, 0x6d, 0x6e, 0x6f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f);
for (let k = 0xa4; k <= 0xaf; k++) if (k !== 0xa8 && k !== 0xa9) ONE[k] = NONE;
for (let k = 0xb0; k <= 0xb7; k++) ONE[k] = I8;
for (let k = 0xb8; k <= 0xbf; k++) ONE[k] = IV;
set(ONE, NONE, 0xc9, 0xd6, 0xd7, 0xec, 0xed, 0xee, 0xef, 0xf4, 0xf5, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd);
set(ONE, I16I8, 0xc8);
// F6/F7/FE/FF: by the ModRM reg field, below
// two-byte opcodes (0F xx)
set(TWO, M, 0x00, 0x01, 0x02, 0x03, 0x0d, 0x20, 0x21, 0x22, 0x23, 0xa3, 0xa5, 0xab, 0xad, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc7);
for (let k = 0x10; k <= 0x1f; k++) TWO[k] = M;
for (let k = 0x28; k <= 0x2f; k++) TWO[k] = M;
for (let k = 0x40; k <= 0x6f; k++) TWO[k] = M;
for (let k = 0x74; k <= 0x7f; k++) TWO[k] = M;
for (let k = 0x90; k <= 0x9f; k++) TWO[k] = M;
for (let k = 0xd0; k <= 0xff; k++) TWO[k] = M;
set(TWO, MI8, 0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6);
set(TWO, NONE, 0x06, 0x08, 0x09, 0x30, 0x31, 0x32, 0x33, 0x77, 0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa);
set(TWO, M, 0xae);
for (let k = 0xc8; k <= 0xcf; k++) TWO[k] = NONE;
TWO[0xff] = 0; // UD0
TWO[0xaa] = 0; // RSM
TWO[0x0b] = 0; // UD2

/**
 * Length of the instruction at host offset o (prefixes included) when it
 * continues at the next instruction, or 0 (a control transfer, unknown, or
 * its opcode not within `end`). The length may reach past `end`: the caller
 * checks it (bytes past the opcode are read only as part of the instruction).
 */
export function fallThroughLength(mem: Uint8Array, o: number, end: number): number {
  const start = o;
  let o16 = false;
  let a16 = false;
  for (let n = 0; ; n++) {
    if (n > 4 || o >= end) return 0;
    const b = mem[o];
    if (b === 0x66) o16 = true;
    else if (b === 0x67) a16 = true;
    else if (!(b === 0xf0 || b === 0xf2 || b === 0xf3 || b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65)) break;
    o++;
  }
  if (o >= end) return 0;
  const iv = o16 ? 2 : 4;
  const modrm = (p: number): number => (a16 ? modrm16(mem, p) : modrm32(mem, p));
  let op = mem[o++];
  let kind: number;
  if (op === 0x0f) {
    op = mem[o++];
    kind = TWO[op];
  } else if (op === 0xf6 || op === 0xf7) {
    const reg = (mem[o] >> 3) & 7;
    return o - start + modrm(o) + (reg < 2 ? (op === 0xf6 ? 1 : iv) : 0);
  } else if (op === 0xfe || op === 0xff) {
    const reg = (mem[o] >> 3) & 7;
    // FF /2../5: near and far CALL/JMP
    if (op === 0xff && reg >= 2 && reg <= 5) return 0;
    return o - start + modrm(o);
  } else if ((op === 0xa0 || op === 0xa1 || op === 0xa2 || op === 0xa3) && !a16) return o - start + 4;
  else kind = ONE[op];
  switch (kind) {
    case NONE:
      return o - start;
    case M:
      return o - start + modrm(o);
    case I8:
      return o - start + 1;
    case MI8:
      return o - start + modrm(o) + 1;
    case IV:
      return o - start + iv;
    case MIV:
      return o - start + modrm(o) + iv;
    case I16I8:
      return o - start + 3;
    default:
      return 0;
  }
}

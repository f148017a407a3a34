/**
 * A WebAssembly binary encoder (the MVP binary format, WebAssembly Core
 * Specification 1.0 section 5, plus the threads proposal's shared-memory
 * limits): a module of types, imports (functions and one memory), functions and
 * exports, and function bodies written op by op. Small on purpose: it is what
 * the JIT emits guest code with, so every byte it writes is visible here.
 *
 *   const m = new ModuleBuilder();
 *   const f = m.func([I32, I32], [I32]);
 *   f.localGet(0).localGet(1).op(Op.i32_add);
 *   m.export('add', f);
 *   const bytes = m.encode();
 */
import { utf8Encode } from '../../base/utf8.js';

export const I32 = 0x7f;
export const I64 = 0x7e;
export type ValType = typeof I32 | typeof I64;
/** Block type with no result. */
export const VOID = 0x40;

/** Opcodes (the ones the JIT uses). */
export const enum Op {
  unreachable = 0x00,
  nop = 0x01,
  block = 0x02,
  loop = 0x03,
  if_ = 0x04,
  else_ = 0x05,
  end = 0x0b,
  br = 0x0c,
  br_if = 0x0d,
  br_table = 0x0e,
  return_ = 0x0f,
  call = 0x10,
  call_indirect = 0x11,
  drop = 0x1a,
  select = 0x1b,
  local_get = 0x20,
  local_set = 0x21,
  local_tee = 0x22,
  global_get = 0x23,
  global_set = 0x24,
  i32_load = 0x28,
  i64_load = 0x29,
  i32_load8_s = 0x2c,
  i32_load8_u = 0x2d,
  i32_load16_s = 0x2e,
  i32_load16_u = 0x2f,
  i32_store = 0x36,
  i64_store = 0x37,
  i32_store8 = 0x3a,
  i32_store16 = 0x3b,
  i32_const = 0x41,
  i64_const = 0x42,
  i32_eqz = 0x45,
  i32_eq = 0x46,
  i32_ne = 0x47,
  i32_lt_s = 0x48,
  i32_lt_u = 0x49,
  i32_gt_s = 0x4a,
  i32_gt_u = 0x4b,
  i32_le_s = 0x4c,
  i32_le_u = 0x4d,
  i32_ge_s = 0x4e,
  i32_ge_u = 0x4f,
  i64_eqz = 0x50,
  i64_eq = 0x51,
  i64_ne = 0x52,
  i32_clz = 0x67,
  i32_ctz = 0x68,
  i32_popcnt = 0x69,
  i32_add = 0x6a,
  i32_sub = 0x6b,
  i32_mul = 0x6c,
  i32_div_s = 0x6d,
  i32_div_u = 0x6e,
  i32_rem_s = 0x6f,
  i32_rem_u = 0x70,
  i32_and = 0x71,
  i32_or = 0x72,
  i32_xor = 0x73,
  i32_shl = 0x74,
  i32_shr_s = 0x75,
  i32_shr_u = 0x76,
  i32_rotl = 0x77,
  i32_rotr = 0x78,
  i64_add = 0x7c,
  i64_sub = 0x7d,
  i64_mul = 0x7e,
  i64_div_s = 0x7f,
  i64_div_u = 0x80,
  i64_rem_s = 0x81,
  i64_rem_u = 0x82,
  i64_and = 0x83,
  i64_or = 0x84,
  i64_xor = 0x85,
  i64_shl = 0x86,
  i64_shr_s = 0x87,
  i64_shr_u = 0x88,
  i32_wrap_i64 = 0xa7,
  i64_extend_i32_s = 0xac,
  i64_extend_i32_u = 0xad,
  i32_extend8_s = 0xc0,
  i32_extend16_s = 0xc1,
}

/** A growable byte buffer with the format's integer encodings. */
export class Bytes {
  buf = new Uint8Array(256);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  byte(b: number): this {
    this.room(1);
    this.buf[this.len++] = b;
    return this;
  }
  bytes(b: ArrayLike<number>): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** Unsigned LEB128 of a value in [0, 2^32). */
  u32(v: number): this {
    v >>>= 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }
  /** Signed LEB128 of an int32. */
  s32(v: number): this {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        this.byte(b);
        return this;
      }
      this.byte(b | 0x80);
    }
  }
  /** Signed LEB128 of an int64. */
  s64(v: bigint): this {
    v = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        this.byte(b);
        return this;
      }
      this.byte(b | 0x80);
    }
  }
  name(s: string): this {
    const b = utf8Encode(s);
    return this.u32(b.length).bytes(b);
  }
  /** A length-prefixed copy of another buffer (a section or a function body). */
  sized(b: Bytes): this {
    return this.u32(b.len).bytes(b.buf.subarray(0, b.len));
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** A function body: its locals and code, written op by op (each method returns `this`). */
export class FuncBuilder {
  readonly code = new Bytes();
  /** Types of the declared locals, after the parameters. */
  private readonly locals: ValType[] = [];
  /** Index of this function in the module's function index space (imports first). */
  index = -1;
  /** Offsets in `code` of the `if`s whose then-branch is unlikely (ifUnlikely). */
  readonly unlikely: number[] = [];
  /** Bytes before the code in the encoded body (the locals' declarations), set by encodeBody: the hints count from the body's start. */
  codeAt = 0;
  /** A name for the "name" section (profilers and V8's code log show it), or none. */
  name = '';

  constructor(
    readonly typeIndex: number,
    readonly params: readonly ValType[],
    readonly results: readonly ValType[],
  ) {}

  /** Declare a local; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }

  op(o: number): this {
    this.code.byte(o);
    return this;
  }
  i32Const(v: number): this {
    this.code.byte(Op.i32_const).s32(v);
    return this;
  }
  i64Const(v: bigint): this {
    this.code.byte(Op.i64_const).s64(v);
    return this;
  }
  /**
   * Locals kept in memory (i32 only): local index -> the address of its value.
   * Reading one loads from that address, writing one stores there (the local
   * itself is only the store's operand), so no value of it lives past the
   * instruction that made it (docs/cpu-jit.md, "Locals and TurboFan's
   * register allocator"). localGetRaw reads the local itself.
   */
  private readonly inMemory = new Map<number, number>();
  /** Keep i32 local `i` at address `addr` of the memory from now on (see inMemory). */
  keepInMemory(i: number, addr: number): this {
    this.inMemory.set(i, addr);
    return this;
  }
  localGet(i: number): this {
    const at = this.inMemory.get(i);
    if (at !== undefined) return this.inv(at);
    this.code.byte(Op.local_get).u32(i);
    return this;
  }
  /** Let `fn` emit at this point (keeps a chain of calls going through a helper). */
  emit(fn: (f: this) => void): this {
    fn(this);
    return this;
  }
  /** The local itself, even where it is kept in memory: its value as last set on this path. */
  localGetRaw(i: number): this {
    this.code.byte(Op.local_get).u32(i);
    return this;
  }
  localSet(i: number): this {
    this.code.byte(Op.local_set).u32(i);
    const at = this.inMemory.get(i);
    return at === undefined ? this : this.i32Const(0).localGetRaw(i).i32Store(at);
  }
  localTee(i: number): this {
    if (this.inMemory.has(i)) return this.localSet(i).localGetRaw(i);
    this.code.byte(Op.local_tee).u32(i);
    return this;
  }
  block(t: number = VOID): this {
    this.code.byte(Op.block).byte(t);
    return this;
  }
  loop(t: number = VOID): this {
    this.code.byte(Op.loop).byte(t);
    return this;
  }
  if(t: number = VOID): this {
    this.code.byte(Op.if_).byte(t);
    return this;
  }
  /**
   * An `if` whose then-branch is rarely taken (an exit, a slow path): the
   * module's branch-hint section tells the optimiser, which then lays that
   * code out of line and keeps its spills there.
   */
  ifUnlikely(t: number = VOID): this {
    this.unlikely.push(this.code.len);
    return this.if(t);
  }
  else(): this {
    return this.op(Op.else_);
  }
  end(): this {
    return this.op(Op.end);
  }
  br(depth: number): this {
    this.code.byte(Op.br).u32(depth);
    return this;
  }
  brIf(depth: number): this {
    this.code.byte(Op.br_if).u32(depth);
    return this;
  }
  brTable(depths: readonly number[], dflt: number): this {
    this.code.byte(Op.br_table).u32(depths.length);
    for (const d of depths) this.code.u32(d);
    this.code.u32(dflt);
    return this;
  }
  call(f: number | FuncBuilder): this {
    this.code.byte(Op.call).u32(typeof f === 'number' ? f : f.index);
    return this;
  }
  /** Call entry (popped last) of table 0 with function type `typeIndex` (ModuleBuilder.type). */
  callIndirect(typeIndex: number): this {
    this.code.byte(Op.call_indirect).u32(typeIndex).u32(0);
    return this;
  }
  return(): this {
    return this.op(Op.return_);
  }
  /** A load or store: `o` is the opcode, `align` log2 of the natural alignment hint, `offset` a constant. */
  mem(o: number, align: number, offset = 0): this {
    this.code.byte(o).u32(align).u32(offset);
    return this;
  }
  i32Load(offset = 0): this {
    return this.mem(Op.i32_load, 2, offset);
  }
  /** Fixed addresses whose value this function may assume (assume). */
  private readonly assumed = new Map<number, number>();
  /** Let inv(addr) be the constant `value` in this function (its caller guarantees the memory holds it). */
  assume(addr: number, value: number): this {
    this.assumed.set(addr, value);
    return this;
  }
  /** The i32 at fixed address `addr` of the memory (a value a function only reads), or the constant assumed for it. */
  inv(addr: number): this {
    const v = this.assumed.get(addr);
    if (v !== undefined) return this.i32Const(v);
    return this.i32Const(0).i32Load(addr);
  }
  i32Store(offset = 0): this {
    return this.mem(Op.i32_store, 2, offset);
  }
  i32Load8u(offset = 0): this {
    return this.mem(Op.i32_load8_u, 0, offset);
  }
  i32Load16u(offset = 0): this {
    return this.mem(Op.i32_load16_u, 1, offset);
  }
  i32Store8(offset = 0): this {
    return this.mem(Op.i32_store8, 0, offset);
  }
  i32Store16(offset = 0): this {
    return this.mem(Op.i32_store16, 1, offset);
  }

  /** memory.copy (bulk memory): dst, src, n on the stack, memmove's semantics. */
  memoryCopy(): this {
    this.code.byte(0xfc).u32(10).byte(0).byte(0);
    return this;
  }
  /** memory.fill (bulk memory): dst, byte value, n on the stack. */
  memoryFill(): this {
    this.code.byte(0xfc).u32(11).byte(0);
    return this;
  }

  /** The body as the code section holds it: locals (run-length) then code then `end`. */
  encodeBody(): Bytes {
    const b = new Bytes();
    const runs: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    b.u32(runs.length);
    for (const [n, t] of runs) b.u32(n).byte(t);
    this.codeAt = b.len;
    b.bytes(this.code.buf.subarray(0, this.code.len));
    b.byte(Op.end);
    return b;
  }
}

interface FuncImport {
  module: string;
  name: string;
  typeIndex: number;
}
interface MemImport {
  module: string;
  name: string;
  min: number;
  max: number | undefined;
  shared: boolean;
}

/** A module: types are interned, imported functions come first in the function index space. */
export class ModuleBuilder {
  private readonly types: string[] = [];
  private readonly typeSigs: [readonly ValType[], readonly ValType[]][] = [];
  private readonly funcImports: FuncImport[] = [];
  private memImport: MemImport | null = null;
  private tableImport: { module: string; name: string; min: number } | null = null;
  private readonly funcs: FuncBuilder[] = [];
  private readonly exports: { name: string; kind: number; index: number }[] = [];

  /** The index of the function type (params) -> (results), added if new. */
  type(params: readonly ValType[], results: readonly ValType[]): number {
    const key = params.join(',') + '>' + results.join(',');
    let i = this.types.indexOf(key);
    if (i < 0) {
      i = this.types.length;
      this.types.push(key);
      this.typeSigs.push([params, results]);
    }
    return i;
  }

  /** Import a function; returns its function index. All imports must come before the first func(). */
  importFunc(module: string, name: string, params: readonly ValType[], results: readonly ValType[]): number {
    if (this.funcs.length !== 0) throw new Error('wasm encoder: imports must be declared before functions');
    this.funcImports.push({ module, name, typeIndex: this.type(params, results) });
    return this.funcImports.length - 1;
  }

  /** Import the module's memory (index 0): `min`/`max` in 64 KiB pages; `shared` needs `max`. */
  importMemory(module: string, name: string, min: number, max?: number, shared = false): void {
    if (shared && max === undefined) throw new Error('wasm encoder: a shared memory needs a maximum');
    this.memImport = { module, name, min, max, shared };
  }

  /** Import a funcref table (index 0) of at least `min` entries, for call_indirect. */
  importTable(module: string, name: string, min: number): void {
    this.tableImport = { module, name, min };
  }

  /** A new function defined by this module. */
  func(params: readonly ValType[], results: readonly ValType[]): FuncBuilder {
    const f = new FuncBuilder(this.type(params, results), params, results);
    f.index = this.funcImports.length + this.funcs.length;
    this.funcs.push(f);
    return f;
  }

  export(name: string, f: FuncBuilder | number): void {
    this.exports.push({ name, kind: 0, index: typeof f === 'number' ? f : f.index });
  }

  encode(): Uint8Array {
    const out = new Bytes();
    out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const section = (id: number, fill: (b: Bytes) => void): void => {
      const b = new Bytes();
      fill(b);
      out.byte(id).sized(b);
    };
    if (this.typeSigs.length) {
      section(1, (b) => {
        b.u32(this.typeSigs.length);
        for (const [p, r] of this.typeSigs) {
          b.byte(0x60).u32(p.length).bytes(p).u32(r.length).bytes(r);
        }
      });
    }
    const nImports = this.funcImports.length + (this.memImport ? 1 : 0) + (this.tableImport ? 1 : 0);
    if (nImports) {
      section(2, (b) => {
        b.u32(nImports);
        for (const im of this.funcImports) b.name(im.module).name(im.name).byte(0x00).u32(im.typeIndex);
        const m = this.memImport;
        if (m) {
          b.name(m.module).name(m.name).byte(0x02);
          const flags = (m.max !== undefined ? 1 : 0) | (m.shared ? 2 : 0);
          b.byte(flags).u32(m.min);
          if (m.max !== undefined) b.u32(m.max);
        }
        const t = this.tableImport;
        if (t) b.name(t.module).name(t.name).byte(0x01).byte(0x70).byte(0).u32(t.min);
      });
    }
    if (this.funcs.length) {
      section(3, (b) => {
        b.u32(this.funcs.length);
        for (const f of this.funcs) b.u32(f.typeIndex);
      });
    }
    if (this.exports.length) {
      section(7, (b) => {
        b.u32(this.exports.length);
        for (const e of this.exports) b.name(e.name).byte(e.kind).u32(e.index);
      });
    }
    const bodies = this.funcs.map((f) => f.encodeBody());
    // the branch-hinting proposal's custom section, before the code section: per
    // function, the offsets in its body (from the locals' declarations on) of the
    // hinted instructions, each with a one-byte hint (0: unlikely)
    const hinted = this.funcs.filter((f) => f.unlikely.length > 0);
    if (hinted.length) {
      section(0, (b) => {
        b.name('metadata.code.branch_hint');
        b.u32(hinted.length);
        for (const f of hinted) {
          b.u32(f.index).u32(f.unlikely.length);
          for (const o of f.unlikely) b.u32(f.codeAt + o).u32(1).byte(0);
        }
      });
    }
    if (this.funcs.length) {
      section(10, (b) => {
        b.u32(bodies.length);
        for (const body of bodies) b.sized(body);
      });
    }
    // the "name" custom section, after the code: subsection 1, function names
    const named = this.funcs.filter((f) => f.name !== '');
    if (named.length) {
      section(0, (b) => {
        b.name('name');
        const sub = new Bytes();
        sub.u32(named.length);
        for (const f of named) sub.u32(f.index).name(f.name);
        b.byte(1).sized(sub);
      });
    }
    return out.result();
  }
}

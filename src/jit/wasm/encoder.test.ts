// The encoder's output instantiated by the host's WebAssembly engine: each test
// builds a module, runs it and checks what it computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bytes, I32, I64, ModuleBuilder, Op } from './encoder.js';
import { instantiate, Wasm, WASM_PAGE } from './host.js';

type Fn = (...a: number[]) => number;

test('LEB128: unsigned and signed forms as the spec gives them', () => {
  const enc = (f: (b: Bytes) => void): number[] => {
    const b = new Bytes();
    f(b);
    return Array.from(b.result());
  };
  assert.deepEqual(enc((b) => b.u32(0)), [0]);
  assert.deepEqual(enc((b) => b.u32(624485)), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(enc((b) => b.u32(0xffffffff)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual(enc((b) => b.s32(-123456)), [0xc0, 0xbb, 0x78]);
  assert.deepEqual(enc((b) => b.s32(63)), [0x3f]);
  assert.deepEqual(enc((b) => b.s32(64)), [0xc0, 0x00]);
  assert.deepEqual(enc((b) => b.s32(-64)), [0x40]);
  assert.deepEqual(enc((b) => b.s32(-0x80000000)), [0x80, 0x80, 0x80, 0x80, 0x78]);
  assert.deepEqual(enc((b) => b.s64(-1n)), [0x7f]);
});

test('a function with parameters, locals and i32 arithmetic', () => {
  const m = new ModuleBuilder();
  const f = m.func([I32, I32], [I32]);
  const t = f.local(I32);
  // (a + b) * 3 - (a >>> 1), with constants needing multi-byte LEB128
  f.localGet(0).localGet(1).op(Op.i32_add).i32Const(3).op(Op.i32_mul).localSet(t);
  f.localGet(t).localGet(0).i32Const(1).op(Op.i32_shr_u).op(Op.i32_sub);
  f.i32Const(-0x12345678).op(Op.i32_xor);
  m.export('f', f);
  const bytes = m.encode();
  assert.ok(Wasm.validate(bytes));
  const fn = instantiate(bytes).exports['f'] as Fn;
  const ref = (a: number, b: number) => ((((a + b) * 3) | 0) - (a >>> 1)) ^ -0x12345678;
  for (const [a, b] of [[1, 2], [-5, 7], [0x7fffffff, 1], [-0x80000000, -1]] as const) assert.equal(fn(a, b), ref(a, b) | 0);
});

test('loops, br_if and br_table', () => {
  const m = new ModuleBuilder();
  // sum of 1..n
  const sum = m.func([I32], [I32]);
  const acc = sum.local(I32);
  sum.block().loop();
  sum.localGet(0).op(Op.i32_eqz).brIf(1);
  sum.localGet(acc).localGet(0).op(Op.i32_add).localSet(acc);
  sum.localGet(0).i32Const(1).op(Op.i32_sub).localSet(0);
  sum.br(0).end().end();
  sum.localGet(acc);
  m.export('sum', sum);
  // switch: 0 -> 10, 1 -> 20, 2 -> 30, else 99
  const sw = m.func([I32], [I32]);
  sw.block().block().block().block();
  sw.localGet(0).brTable([0, 1, 2], 3);
  sw.end().i32Const(10).return();
  sw.end().i32Const(20).return();
  sw.end().i32Const(30).return();
  sw.end().i32Const(99);
  m.export('sw', sw);
  // if/else with a result
  const sel = m.func([I32], [I32]);
  sel.localGet(0).i32Const(0).op(Op.i32_lt_s).if(I32).i32Const(-1).else().i32Const(1).end();
  m.export('sign', sel);
  const ex = instantiate(m.encode()).exports;
  assert.equal((ex['sum'] as Fn)(100), 5050);
  assert.deepEqual([0, 1, 2, 3, -1].map((v) => (ex['sw'] as Fn)(v)), [10, 20, 30, 99, 99]);
  assert.equal((ex['sign'] as Fn)(-4), -1);
  assert.equal((ex['sign'] as Fn)(4), 1);
});

test('i64 arithmetic: a 32x32 -> 64 multiply split into halves', () => {
  const m = new ModuleBuilder();
  const f = m.func([I32, I32, I32], [I32]);
  const p = f.local(I64);
  f.localGet(0).op(Op.i64_extend_i32_u).localGet(1).op(Op.i64_extend_i32_u).op(Op.i64_mul).localSet(p);
  f.localGet(2).if(I32);
  f.localGet(p).i64Const(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
  f.else().localGet(p).op(Op.i32_wrap_i64).end();
  m.export('mul', f);
  const mul = instantiate(m.encode()).exports['mul'] as Fn;
  const a = 0xfedcba98, b = 0x87654321;
  const prod = BigInt(a) * BigInt(b);
  assert.equal(mul(a | 0, b | 0, 0) >>> 0, Number(prod & 0xffffffffn));
  assert.equal(mul(a | 0, b | 0, 1) >>> 0, Number(prod >> 32n));
});

test('an imported memory seen from JS: loads and stores of every width, unaligned, with offsets', () => {
  for (const shared of [false, true]) {
    const mem = new Wasm.Memory({ initial: 1, maximum: 1, shared });
    const m = new ModuleBuilder();
    m.importMemory('env', 'mem', 1, 1, shared);
    const copy = m.func([I32, I32], []); // copy 4 bytes at a to b+8 as a byte, a word and a dword
    copy.localGet(1).localGet(0).i32Load8u().i32Store8(8);
    copy.localGet(1).localGet(0).i32Load16u().i32Store16(16);
    copy.localGet(1).localGet(0).i32Load().i32Store(24);
    m.export('copy', copy);
    const ex = instantiate(m.encode(), { env: { mem } }).exports;
    const u8 = new Uint8Array(mem.buffer);
    assert.equal(u8.length, WASM_PAGE);
    u8.set([0x11, 0x22, 0x33, 0x44], 101);
    (ex['copy'] as (a: number, b: number) => void)(101, 1000);
    assert.deepEqual(Array.from(u8.subarray(1008, 1009)), [0x11]);
    assert.deepEqual(Array.from(u8.subarray(1016, 1018)), [0x11, 0x22]);
    assert.deepEqual(Array.from(u8.subarray(1024, 1028)), [0x11, 0x22, 0x33, 0x44]);
  }
});

test('imported functions are called with their arguments and results', () => {
  const m = new ModuleBuilder();
  const seen: number[] = [];
  const log = m.importFunc('env', 'log', [I32], []);
  const twice = m.importFunc('env', 'twice', [I32], [I32]);
  const f = m.func([I32], [I32]);
  f.localGet(0).call(log).localGet(0).call(twice).call(twice);
  m.export('f', f);
  const ex = instantiate(m.encode(), { env: { log: (v: number) => seen.push(v), twice: (v: number) => v * 2 } }).exports;
  assert.equal((ex['f'] as Fn)(21), 84);
  assert.deepEqual(seen, [21]);
});

test('imports after a function are refused; a shared memory needs a maximum', () => {
  const m = new ModuleBuilder();
  m.func([], []);
  assert.throws(() => m.importFunc('env', 'x', [], []), /imports must be declared before functions/);
  assert.throws(() => new ModuleBuilder().importMemory('env', 'mem', 1, undefined, true), /shared memory needs a maximum/);
});

test('an imported table: call_indirect reaches functions of other instances by index', () => {
  const table = new Wasm.Table({ element: 'anyfunc', initial: 4 });
  const callee = (k: number): unknown => {
    const m = new ModuleBuilder();
    const f = m.func([I32, I32], [I32]);
    f.localGet(0).i32Const(k).op(Op.i32_mul).localGet(1).op(Op.i32_add);
    m.export('f', f);
    return instantiate(m.encode()).exports['f'];
  };
  table.set(1, callee(3));
  table.set(3, callee(5));
  const m = new ModuleBuilder();
  m.importTable('env', 't', 4);
  const ty = m.type([I32, I32], [I32]);
  const f = m.func([I32, I32, I32], [I32]);
  f.localGet(0).localGet(1).localGet(2).callIndirect(ty);
  m.export('call', f);
  const bytes = m.encode();
  assert.ok(Wasm.validate(bytes));
  const call = instantiate(bytes, { env: { t: table } }).exports['call'] as Fn;
  assert.equal(call(7, 1, 1), 22);
  assert.equal(call(7, 1, 3), 36);
  assert.throws(() => call(7, 1, 0)); // an empty entry traps
});

test('branch hints: the custom section names each unlikely `if` by its offset in the function body, locals included', () => {
  const m = new ModuleBuilder();
  m.func([], []); // function 0: no hints, left out of the section
  const f = m.func([I32], [I32]);
  const t = f.local(I32);
  const t2 = f.local(I64);
  f.localGet(0).i32Const(77).op(Op.i32_eq).ifUnlikely();
  f.localGet(0).i32Const(3).op(Op.i32_mul).localSet(0);
  f.end();
  f.localGet(0).localTee(t).op(Op.i32_eqz).ifUnlikely();
  f.i32Const(1).localSet(0);
  f.end();
  f.localGet(0);
  m.export('f', f);
  const bytes = m.encode();
  assert.ok(Wasm.validate(bytes));
  const mod = new Wasm.Module(bytes);
  const api = (globalThis as unknown as { WebAssembly: { Module: { customSections(m: unknown, name: string): ArrayBuffer[] } } }).WebAssembly;
  const [sec] = api.Module.customSections(mod, 'metadata.code.branch_hint');
  assert.ok(sec !== undefined, 'the section is there, under its name');
  // the body of function 1: locals as two runs (i32, i64), 5 bytes, then the code; the
  // first `if` after local.get 0, i32.const 77 (two LEB bytes), i32.eq: 6 bytes; the
  // second 15 bytes after it. Per function: index, count, then offset, size 1, 0 (unlikely)
  assert.deepEqual(Array.from(new Uint8Array(sec)), [1, 1, 2, 5 + 6, 1, 0, 5 + 6 + 15, 1, 0]);
  const fn = instantiate(bytes).exports['f'] as Fn;
  assert.equal(fn(77), 231);
  assert.equal(fn(0), 1);
  assert.equal(fn(5), 5);
  void t2;
});

test('keepInMemory, localGetRaw and assume: a local kept at an address, and an address taken as a constant', () => {
  const mem = new Wasm.Memory({ initial: 1, maximum: 1 });
  const m = new ModuleBuilder();
  m.importMemory('env', 'mem', 1, 1);
  const f = m.func([I32], [I32]);
  const t = f.local(I32);
  f.keepInMemory(t, 16).assume(32, 1000);
  // t = a + 1 (stored at 16); t += t (read back from 16); result: t + raw t + the constant "at" 32
  f.localGet(0).i32Const(1).op(Op.i32_add).localSet(t);
  f.localGet(t).localGet(t).op(Op.i32_add).localTee(t);
  f.localGetRaw(t).op(Op.i32_add).inv(32).op(Op.i32_add);
  m.export('f', f);
  const bytes = m.encode();
  assert.ok(Wasm.validate(bytes));
  const words = new Int32Array(mem.buffer);
  words[8] = 7; // address 32: assumed 1000, never read
  const fn = instantiate(bytes, { env: { mem } }).exports['f'] as Fn;
  assert.equal(fn(4), 10 + 10 + 1000);
  assert.equal(words[4], 10, 'the kept local is in memory at its address');
  assert.equal(words[8], 7);
});

/**
 * A binary encoding for state values (numbers, booleans, strings, null,
 * arrays, plain objects and typed arrays), self-describing by a one-byte tag
 * per value, little-endian. Snapshot sections hold device, CPU and machine
 * states in it. The decoder treats its input as hostile: every length is
 * checked against the bytes left, nesting is bounded, and any problem is a
 * StateError, never an out-of-range read.
 */
import { utf8Decode, utf8Encode } from '../base/utf8.js';
import { StateError } from './state.js';

const enum Tag {
  NULL = 0,
  FALSE = 1,
  TRUE = 2,
  F64 = 3,
  STR = 4,
  ARRAY = 5,
  OBJECT = 6,
  U8S = 16,
  U16S = 17,
  U32S = 18,
  I32S = 19,
  F64S = 20,
  I8S = 21,
  I16S = 22,
  F32S = 23,
}

type TypedCtor = { new (buf: ArrayBuffer): ArrayBufferView; BYTES_PER_ELEMENT: number; name: string };
const TYPED: [Tag, TypedCtor][] = [
  [Tag.U8S, Uint8Array],
  [Tag.U16S, Uint16Array],
  [Tag.U32S, Uint32Array],
  [Tag.I32S, Int32Array],
  [Tag.F64S, Float64Array],
  [Tag.I8S, Int8Array],
  [Tag.I16S, Int16Array],
  [Tag.F32S, Float32Array],
];
/** Deeper nesting than any state needs: a hostile file cannot exhaust the stack. */
const MAX_DEPTH = 32;


/** A growable byte buffer. */
export class ByteWriter {
  private _buf = new Uint8Array(4096);
  private _dv = new DataView(this._buf.buffer);
  length = 0;

  private _room(n: number): void {
    if (this.length + n <= this._buf.length) return;
    let size = this._buf.length * 2;
    while (size < this.length + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this._buf.subarray(0, this.length));
    this._buf = b;
    this._dv = new DataView(b.buffer);
  }
  u8(v: number): void {
    this._room(1);
    this._buf[this.length++] = v;
  }
  u16(v: number): void {
    this._room(2);
    this._dv.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this._room(4);
    this._dv.setUint32(this.length, v >>> 0, true);
    this.length += 4;
  }
  f64(v: number): void {
    this._room(8);
    this._dv.setFloat64(this.length, v, true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this._room(b.length);
    this._buf.set(b, this.length);
    this.length += b.length;
  }
  str(s: string): void {
    const b = utf8Encode(s);
    this.u32(b.length);
    this.bytes(b);
  }
  /** The bytes written (a view; copy it to keep it past further writes). */
  view(): Uint8Array {
    return this._buf.subarray(0, this.length);
  }
}

/** Bounds-checked reads over untrusted bytes; `what` names the input in errors. */
export class ByteReader {
  pos = 0;
  private readonly _dv: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly what: string,
  ) {
    this._dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get left(): number {
    return this.buf.length - this.pos;
  }
  need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new StateError(`${this.what}: truncated (needs ${n} more bytes at offset ${this.pos}, has ${this.left})`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this._dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this._dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this._dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  str(): string {
    const n = this.u32();
    try {
      return utf8Decode(this.bytes(n));
    } catch (e) {
      if (e instanceof StateError) throw e;
      throw new StateError(`${this.what}: a string is not valid UTF-8`);
    }
  }
}

function write(w: ByteWriter, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new StateError('state nests too deeply to encode');
  if (v === null || v === undefined) return w.u8(Tag.NULL);
  if (v === false) return w.u8(Tag.FALSE);
  if (v === true) return w.u8(Tag.TRUE);
  if (typeof v === 'number') {
    w.u8(Tag.F64);
    return w.f64(v);
  }
  if (typeof v === 'string') {
    w.u8(Tag.STR);
    return w.str(v);
  }
  if (ArrayBuffer.isView(v)) {
    const t = TYPED.find(([, c]) => v.constructor === c);
    if (!t) throw new StateError(`cannot encode a ${v.constructor.name}`);
    w.u8(t[0]);
    w.u32(v.byteLength / t[1].BYTES_PER_ELEMENT);
    return w.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  if (Array.isArray(v)) {
    w.u8(Tag.ARRAY);
    w.u32(v.length);
    for (const x of v) write(w, x, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as object);
    w.u8(Tag.OBJECT);
    w.u32(entries.length);
    for (const [k, x] of entries) {
      w.str(k);
      write(w, x, depth + 1);
    }
    return;
  }
  throw new StateError(`cannot encode a ${typeof v}`);
}

function read(r: ByteReader, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new StateError(`${r.what}: nests too deeply`);
  const tag = r.u8();
  switch (tag) {
    case Tag.NULL:
      return null;
    case Tag.FALSE:
      return false;
    case Tag.TRUE:
      return true;
    case Tag.F64:
      return r.f64();
    case Tag.STR:
      return r.str();
    case Tag.ARRAY: {
      const n = r.u32();
      r.need(n); // at least a tag per element: a huge count in a short input fails here
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(read(r, depth + 1));
      return out;
    }
    case Tag.OBJECT: {
      const n = r.u32();
      r.need(n * 5);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = r.str();
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new StateError(`${r.what}: field name ${k} is not allowed`);
        if (Object.prototype.hasOwnProperty.call(out, k)) throw new StateError(`${r.what}: field ${k} appears twice`);
        out[k] = read(r, depth + 1);
      }
      return out;
    }
    default: {
      const t = TYPED.find(([tg]) => tg === tag);
      if (!t) throw new StateError(`${r.what}: unknown value tag ${tag} at offset ${r.pos - 1}`);
      const n = r.u32();
      const bytes = r.bytes(n * t[1].BYTES_PER_ELEMENT);
      const copy = new ArrayBuffer(bytes.length);
      new Uint8Array(copy).set(bytes);
      return new t[1](copy);
    }
  }
}

/** Encode a state value. */
export function encodeValue(v: unknown): Uint8Array {
  const w = new ByteWriter();
  write(w, v, 0);
  return w.view().slice();
}

/** Decode a whole buffer as one state value; trailing bytes are an error. */
export function decodeValue(b: Uint8Array, what: string): unknown {
  const r = new ByteReader(b, what);
  const v = read(r, 0);
  if (r.left !== 0) throw new StateError(`${what}: ${r.left} bytes after the value`);
  return v;
}

/** The codec's tag for a typed array (16-23), or undefined for any other kind of value. */
export function typedArrayTag(v: unknown): number | undefined {
  if (!ArrayBuffer.isView(v)) return undefined;
  return TYPED.find(([, c]) => v.constructor === c)?.[0];
}

/** A typed array of the kind `tag` (typedArrayTag) over `buf`, or undefined for an unknown tag or a size that is not a whole number of elements. */
export function typedArrayOf(tag: number, buf: ArrayBuffer): ArrayBufferView | undefined {
  const t = TYPED.find(([tg]) => tg === tag);
  if (!t || buf.byteLength % t[1].BYTES_PER_ELEMENT !== 0) return undefined;
  return new t[1](buf);
}

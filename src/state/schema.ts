/**
 * Declared device state, after QEMU's VMState: a device lists its state once,
 * as named, typed fields, and save, load, validation and the completeness
 * test all follow from that list. A field names what the hardware holds
 * ("value", "irr") and, where the implementation keeps it under another
 * property name, says which (`u8.at('_value')`), so the saved format stays
 * the device's, not our code's (QEMU migration/main.rst).
 *
 *   static readonly stateSchema = defineState<Port92>('port92', 1, { value: u8.at('_value') });
 *
 * Loading is two steps, so a machine can check every device before it
 * changes any: checkFields() validates an untrusted state object against the
 * schema (every field present, of its kind and range; no unknown fields),
 * then loadFields() assigns it and runs the schema's postLoad hook (re-arm
 * timers, recompute outputs).
 *
 * Devices not converted yet are registered with legacyState(): their own
 * saveState()/loadState() do the work, and their loadState() validates.
 */
import { StateError, cloneState, type StateObject, type StateValue } from './state.js';

type ScalarKind = 'u8' | 'u16' | 'u32' | 'i32' | 'f64' | 'bool' | 'str';
type ArrayKind = 'u8[]' | 'u16[]' | 'u32[]' | 'i32[]' | 'f64[]';
export type FieldKind = ScalarKind | ArrayKind | 'struct';

/** One declared field. Immutable: at()/range() return a new field. */
export class Field {
  constructor(
    readonly kind: FieldKind,
    /** Element count for arrays. */
    readonly length = 0,
    /** Sub-fields for a struct (the property holds an object with these fields). */
    readonly fields: Fields | null = null,
    /** The property the value lives in on the object, when it differs from the field name. */
    readonly prop: string | null = null,
    /** Inclusive bounds for numbers (beyond the kind's own). */
    readonly min = -Infinity,
    readonly max = Infinity,
    /** For a value the object does not keep in one property (a timer's deadline): how to read and restore it. */
    readonly get: ((obj: never) => StateValue) | null = null,
    readonly set: ((obj: never, v: never) => void) | null = null,
  ) {}

  /** Keep this field in property `prop` of the object. */
  at(prop: string): Field {
    return new Field(this.kind, this.length, this.fields, prop, this.min, this.max, this.get, this.set);
  }

  /** Refuse values outside [min, max] on load. */
  range(min: number, max: number): Field {
    return new Field(this.kind, this.length, this.fields, this.prop, min, max, this.get, this.set);
  }

  /**
   * Read the value with `get` and restore it with `set` (after the plain
   * fields are assigned, before postLoad), for state the object holds in
   * another form, such as a timer's deadline.
   */
  via<T, V extends StateValue>(get: (obj: T) => V, set: (obj: T, v: V) => void): Field {
    return new Field(this.kind, this.length, this.fields, this.prop, this.min, this.max, get as (obj: never) => StateValue, set as (obj: never, v: never) => void);
  }
}

export type Fields = Readonly<Record<string, Field>>;

export const u8 = new Field('u8');
export const u16 = new Field('u16');
export const u32 = new Field('u32');
export const i32 = new Field('i32');
export const f64 = new Field('f64');
export const bool = new Field('bool');
export const str = new Field('str');
export const u8s = (length: number) => new Field('u8[]', length);
export const u16s = (length: number) => new Field('u16[]', length);
export const u32s = (length: number) => new Field('u32[]', length);
export const i32s = (length: number) => new Field('i32[]', length);
export const f64s = (length: number) => new Field('f64[]', length);
export const struct = (fields: Fields) => new Field('struct', 0, fields);

export interface FieldSchema<T extends object = object> {
  readonly kind: 'fields';
  /** The state type's name and version, as a snapshot section records them. */
  readonly name: string;
  readonly version: number;
  readonly fields: Fields;
  /** Properties of the object that are deliberately not state (wiring, caches), for the completeness test. */
  readonly transient: readonly string[];
  /** Run after the fields are assigned: recompute derived values, re-arm timers, drive outputs. */
  postLoad?(obj: T): void;
}

export interface LegacySchema {
  readonly kind: 'legacy';
  readonly name: string;
  readonly version: number;
}

/** How a device's state is declared: field by field, or (until converted) by its own saveState/loadState. */
export type StateSchema<T extends object = object> = FieldSchema<T> | LegacySchema;

export function defineState<T extends object>(
  name: string,
  version: number,
  fields: Fields,
  opts: { transient?: readonly string[]; postLoad?: (obj: T) => void } = {},
): FieldSchema<T> {
  const schema: FieldSchema<T> = { kind: 'fields', name, version, fields, transient: opts.transient ?? [] };
  if (opts.postLoad) schema.postLoad = opts.postLoad;
  return schema;
}

/** A device not converted to a field schema yet: its saveState()/loadState() are used as they are. */
export function legacyState(name: string, version = 1): LegacySchema {
  return { kind: 'legacy', name, version };
}

const ARRAYS: Record<ArrayKind, new (n: number) => ArrayBufferView & ArrayLike<number>> = {
  'u8[]': Uint8Array,
  'u16[]': Uint16Array,
  'u32[]': Uint32Array,
  'i32[]': Int32Array,
  'f64[]': Float64Array,
};

const prop = (name: string, f: Field) => f.prop ?? name;

/** The state of `obj` as a plain object keyed by field name (a copy). */
export function saveFields(fields: Fields, obj: object): StateObject {
  const o = obj as Record<string, unknown>;
  const out: StateObject = {};
  for (const [name, f] of Object.entries(fields)) {
    if (f.get) {
      out[name] = cloneState((f.get as (obj: object) => StateValue)(obj));
      continue;
    }
    const v = o[prop(name, f)];
    if (f.kind === 'struct') out[name] = saveFields(f.fields as Fields, v as object);
    else out[name] = cloneState(v as StateValue);
  }
  return out;
}

function checkNumber(where: string, f: Field, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new StateError(`${where} must be a finite number`);
  const int = Number.isInteger(v);
  const bad =
    (f.kind === 'u8' && (!int || v < 0 || v > 0xff)) ||
    (f.kind === 'u16' && (!int || v < 0 || v > 0xffff)) ||
    (f.kind === 'u32' && (!int || v < 0 || v > 0xffffffff)) ||
    (f.kind === 'i32' && (!int || v < -0x80000000 || v > 0x7fffffff));
  if (bad) throw new StateError(`${where} must be a ${f.kind}, not ${v}`);
  if (v < f.min || v > f.max) throw new StateError(`${where} must be between ${f.min} and ${f.max}, not ${v}`);
}

/** Validate an untrusted state object against the fields; throws StateError naming the first bad field. */
export function checkFields(where: string, fields: Fields, s: unknown): void {
  if (typeof s !== 'object' || s === null || Array.isArray(s) || ArrayBuffer.isView(s)) throw new StateError(`${where}: the state is not an object`);
  const rec = s as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!(k in fields)) throw new StateError(`${where}: unknown field ${k}`);
  for (const [name, f] of Object.entries(fields)) {
    const at = `${where}.${name}`;
    if (!(name in rec)) throw new StateError(`${at} is missing`);
    const v = rec[name];
    switch (f.kind) {
      case 'bool':
        if (typeof v !== 'boolean') throw new StateError(`${at} must be a boolean`);
        break;
      case 'str':
        if (typeof v !== 'string') throw new StateError(`${at} must be a string`);
        break;
      case 'struct':
        checkFields(at, f.fields as Fields, v);
        break;
      case 'u8':
      case 'u16':
      case 'u32':
      case 'i32':
      case 'f64':
        checkNumber(at, f, v);
        break;
      default: {
        const ctor = ARRAYS[f.kind];
        if (!(v instanceof ctor) || v.length !== f.length) throw new StateError(`${at} must be a ${ctor.name} of length ${f.length}`);
      }
    }
  }
}

/** Assign a state checked by checkFields() into `obj` (typed arrays are copied into the existing ones). */
export function assignFields(fields: Fields, obj: object, s: StateObject): void {
  const o = obj as Record<string, unknown>;
  const later: [Field, StateValue][] = [];
  for (const [name, f] of Object.entries(fields)) {
    const p = prop(name, f);
    const v = s[name];
    if (f.set) later.push([f, v as StateValue]);
    else if (f.kind === 'struct') assignFields(f.fields as Fields, o[p] as object, v as StateObject);
    else if (ArrayBuffer.isView(v)) {
      const cur = o[p];
      if (ArrayBuffer.isView(cur) && !Object.isFrozen(cur)) (cur as Uint8Array).set(v as Uint8Array);
      else o[p] = (v as Uint8Array).slice();
    } else o[p] = v;
  }
  for (const [f, v] of later) (f.set as (obj: object, v: StateValue) => void)(obj, v);
}

/** Check and load in one step (a device's own loadState over its schema). */
export function loadChecked<T extends object>(where: string, schema: FieldSchema<T>, obj: T, s: unknown): void {
  checkFields(where, schema.fields, s);
  assignFields(schema.fields, obj, s as StateObject);
  schema.postLoad?.(obj);
}

/** A device whose state the machine saves and loads through its schema. */
export interface DeclaredState {
  readonly id: string;
}

/** Save a device's state through its schema. */
export function saveDeclared(schema: StateSchema, dev: object): StateObject {
  if (schema.kind === 'legacy') return cloneState((dev as { saveState(): StateObject }).saveState());
  return saveFields(schema.fields, dev);
}

/** Validate a device state without changing anything (legacy devices validate inside their loadState). */
export function checkDeclared(where: string, schema: StateSchema, s: unknown): void {
  if (schema.kind === 'legacy') {
    if (typeof s !== 'object' || s === null) throw new StateError(`${where}: the state is not an object`);
    return;
  }
  checkFields(where, schema.fields, s);
}

/** Load a device's state through its schema (a field schema's state must have passed checkDeclared). */
export function loadDeclared(schema: StateSchema, dev: object, s: StateObject): void {
  if (schema.kind === 'legacy') {
    (dev as { loadState(s: StateObject): void }).loadState(cloneState(s));
    return;
  }
  assignFields(schema.fields, dev, s);
  schema.postLoad?.(dev);
}

/**
 * The completeness check: own properties of `obj` that are in neither the
 * schema nor its transient list. A device that gains a field and forgets to
 * declare it shows up here (run by a test over every device of a machine).
 */
export function undeclaredProperties(schema: FieldSchema, obj: object): string[] {
  const declared = new Set<string>(schema.transient);
  const walk = (fields: Fields, o: object, path: string, out: string[]) => {
    const here = new Set<string>(path ? [] : [...schema.transient, 'id']);
    for (const [name, f] of Object.entries(fields)) {
      if (f.get) continue; // derived from properties that must be declared (or transient) themselves
      here.add(prop(name, f));
      if (f.kind === 'struct') walk(f.fields as Fields, (o as Record<string, object>)[prop(name, f)], `${path}${prop(name, f)}.`, out);
    }
    for (const k of Object.keys(o)) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === 'function') continue; // hooks the board sets
      if (!here.has(k) && !declared.has(path + k)) out.push(path + k);
    }
    return out;
  };
  return walk(schema.fields, obj, '', []);
}

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
 */
import { StateError, cloneState, type StateObject, type StateValue } from './state.js';

type ScalarKind = 'u8' | 'u16' | 'u32' | 'i32' | 'f64' | 'bool' | 'str';
type ArrayKind = 'u8[]' | 'u16[]' | 'u32[]' | 'i32[]' | 'f64[]';
export type FieldKind = ScalarKind | ArrayKind | 'struct' | 'struct[]';

/** One declared field. Immutable: at()/range()/via()/upTo() return a new field. */
export class Field {
  constructor(
    readonly kind: FieldKind,
    /** Element count for arrays (the most elements, for a variable-length one). */
    readonly length = 0,
    /** Sub-fields for a struct (the property holds an object with these fields) or each element of a struct array. */
    readonly fields: Fields | null = null,
    /** The property the value lives in on the object, when it differs from the field name (a dotted path reaches into a property: `drives.0`). */
    readonly prop: string | null = null,
    /** Inclusive bounds for numbers (beyond the kind's own). */
    readonly min = -Infinity,
    readonly max = Infinity,
    /** For a value the object does not keep in one property (a timer's deadline): how to read and restore it. */
    readonly get: ((obj: never, parent: never) => StateValue) | null = null,
    readonly set: ((obj: never, v: never, parent: never) => void) | null = null,
    /** A typed array of 0..length elements rather than exactly length (a queue). */
    readonly variable = false,
  ) {}

  private _with(o: Partial<Pick<Field, 'prop' | 'min' | 'max' | 'get' | 'set' | 'variable'>>): Field {
    const n = { ...this, ...o };
    return new Field(n.kind, n.length, n.fields, n.prop, n.min, n.max, n.get, n.set, n.variable);
  }

  /** Keep this field in property `prop` of the object. */
  at(prop: string): Field {
    return this._with({ prop });
  }

  /** Refuse values outside [min, max] on load. */
  range(min: number, max: number): Field {
    return this._with({ min, max });
  }

  /** A typed array field that holds up to `length` elements (any count from 0), not exactly `length`. */
  upTo(): Field {
    return this._with({ variable: true });
  }

  /**
   * Read the value with `get` and restore it with `set` (after the plain
   * fields are assigned, before postLoad), for state the object holds in
   * another form, such as a timer's deadline. Inside a struct, `parent` is
   * the object that holds the struct (an IDE drive's timer is its channel's).
   */
  via<T, V extends StateValue, P = unknown>(get: (obj: T, parent: P) => V, set: (obj: T, v: V, parent: P) => void): Field {
    return this._with({ get: get as (obj: never, parent: never) => StateValue, set: set as (obj: never, v: never, parent: never) => void });
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
/** A fixed number of structs: the property holds an array of `length` objects with these fields (an 8254's three channels). */
export const structs = (length: number, fields: Fields) => new Field('struct[]', length, fields);

export interface FieldSchema<T extends object = object> {
  readonly kind: 'fields';
  /** The state type's name and version, as a snapshot section records them. */
  readonly name: string;
  readonly version: number;
  readonly fields: Fields;
  /** Properties of the object that are deliberately not state (wiring, caches), for the completeness test. */
  readonly transient: readonly string[];
  /**
   * A check that needs the object itself, run after the fields validated and
   * before anything is assigned (a PCI function refuses the state of another
   * chip by its IDs). Throws StateError.
   */
  check?(obj: T, s: StateObject, where: string): void;
  /** Run after the fields are assigned: recompute derived values, re-arm timers, drive outputs. */
  postLoad?(obj: T): void;
}

/** How a device's state is declared (every device of the machine has one). */
export type StateSchema<T extends object = object> = FieldSchema<T>;

export function defineState<T extends object>(
  name: string,
  version: number,
  fields: Fields,
  opts: { transient?: readonly string[]; check?: (obj: T, s: StateObject, where: string) => void; postLoad?: (obj: T) => void } = {},
): FieldSchema<T> {
  const schema: FieldSchema<T> = { kind: 'fields', name, version, fields, transient: opts.transient ?? [] };
  if (opts.check) schema.check = opts.check;
  if (opts.postLoad) schema.postLoad = opts.postLoad;
  return schema;
}

const ARRAYS: Record<ArrayKind, new (n: number) => ArrayBufferView & ArrayLike<number>> = {
  'u8[]': Uint8Array,
  'u16[]': Uint16Array,
  'u32[]': Uint32Array,
  'i32[]': Int32Array,
  'f64[]': Float64Array,
};

const prop = (name: string, f: Field) => f.prop ?? name;

/** The object that holds the last step of a (dotted) property path, and that step's key. */
function holder(obj: object, path: string): [Record<string, unknown>, string] {
  const steps = path.split('.');
  let o = obj as Record<string, unknown>;
  for (let i = 0; i < steps.length - 1; i++) o = o[steps[i]] as Record<string, unknown>;
  return [o, steps[steps.length - 1]];
}

function read(obj: object, path: string): unknown {
  const [o, k] = holder(obj, path);
  return o[k];
}

type Getter = (obj: object, parent: object | null) => StateValue;
type Setter = (obj: object, v: StateValue, parent: object | null) => void;

/** The state of `obj` as a plain object keyed by field name (a copy). `parent` holds `obj` when it is a struct. */
export function saveFields(fields: Fields, obj: object, parent: object | null = null): StateObject {
  const out: StateObject = {};
  for (const [name, f] of Object.entries(fields)) {
    if (f.get) {
      out[name] = cloneState((f.get as Getter)(obj, parent));
      continue;
    }
    const v = read(obj, prop(name, f));
    if (f.kind === 'struct') out[name] = saveFields(f.fields as Fields, v as object, obj);
    else if (f.kind === 'struct[]') out[name] = (v as object[]).map((e) => saveFields(f.fields as Fields, e, obj));
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
      case 'struct[]':
        if (!Array.isArray(v) || v.length !== f.length) throw new StateError(`${at} must be an array of ${f.length}`);
        v.forEach((e, i) => checkFields(`${at}[${i}]`, f.fields as Fields, e));
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
        if (!(v instanceof ctor)) throw new StateError(`${at} must be a ${ctor.name}`);
        if (f.variable ? v.length > f.length : v.length !== f.length) throw new StateError(`${at} must be a ${ctor.name} of ${f.variable ? 'at most ' : ''}length ${f.length}`);
      }
    }
  }
}

/** Assign a state checked by checkFields() into `obj` (typed arrays are copied into the existing ones). */
export function assignFields(fields: Fields, obj: object, s: StateObject, parent: object | null = null): void {
  const later: [Field, StateValue][] = [];
  for (const [name, f] of Object.entries(fields)) {
    const [o, p] = holder(obj, prop(name, f));
    const v = s[name];
    if (f.set) later.push([f, v as StateValue]);
    else if (f.kind === 'struct') assignFields(f.fields as Fields, o[p] as object, v as StateObject, obj);
    else if (f.kind === 'struct[]') (o[p] as object[]).forEach((e, i) => assignFields(f.fields as Fields, e, (v as unknown as StateObject[])[i], obj));
    else if (ArrayBuffer.isView(v)) {
      const cur = o[p];
      // into the existing array (it may be a view the board handed the device, such as video memory)
      if (ArrayBuffer.isView(cur) && !Object.isFrozen(cur) && (cur as Uint8Array).length === (v as Uint8Array).length) (cur as Uint8Array).set(v as Uint8Array);
      else o[p] = (v as Uint8Array).slice();
    } else o[p] = v;
  }
  for (const [f, v] of later) (f.set as Setter)(obj, v, parent);
}

/** Check and load in one step (a device's own loadState over its schema). */
export function loadChecked<T extends object>(where: string, schema: FieldSchema<T>, obj: T, s: unknown): void {
  checkFields(where, schema.fields, s);
  schema.check?.(obj, s as StateObject, where);
  assignFields(schema.fields, obj, s as StateObject);
  schema.postLoad?.(obj);
}

/** A device whose state the machine saves and loads through its schema. */
export interface DeclaredState {
  readonly id: string;
}

/** Save a device's state through its schema. */
export function saveDeclared(schema: StateSchema, dev: object): StateObject {
  return saveFields(schema.fields, dev);
}

/** Validate a device state without changing anything. */
export function checkDeclared(where: string, schema: StateSchema, s: unknown, dev: object): void {
  checkFields(where, schema.fields, s);
  schema.check?.(dev, s as StateObject, where);
}

/** Load a device's state through its schema (a field schema's state must have passed checkDeclared). */
export function loadDeclared(schema: StateSchema, dev: object, s: StateObject): void {
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
      const p = prop(name, f);
      here.add(p.split('.')[0]);
      if (f.kind === 'struct') walk(f.fields as Fields, read(o, p) as object, `${path}${p}.`, out);
      if (f.kind === 'struct[]') for (const e of read(o, p) as object[]) walk(f.fields as Fields, e, `${path}${p}[].`, out);
    }
    for (const k of Object.keys(o)) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === 'function') continue; // hooks the board sets
      if (!here.has(k) && !declared.has(path + k)) out.push(path + k);
    }
    return out;
  };
  return [...new Set(walk(schema.fields, obj, '', []))];
}

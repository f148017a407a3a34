/**
 * Device state: every device declares its state as a plain object of numbers,
 * booleans, strings and typed arrays; saveState() returns it and loadState()
 * takes it back. This file holds the shared types and the checks a loader
 * runs on untrusted state (a snapshot file is input like any other).
 */
export type StateValue = number | boolean | string | Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
export type StateObject = { [field: string]: StateValue | StateObject | StateObject[] };

/** A component with declared, serialisable state. */
export interface Stateful<S extends object = object> {
  readonly id: string;
  saveState(): S;
  loadState(s: S): void;
}

export class StateError extends Error {}

/** Check that `s` has every field of `template` with the same type (and typed-array length). */
export function checkState(id: string, template: object, s: unknown): void {
  if (typeof s !== 'object' || s === null) throw new StateError(`${id}: state is not an object`);
  const rec = s as Record<string, unknown>;
  for (const [k, v] of Object.entries(template)) {
    const got = rec[k];
    if (ArrayBuffer.isView(v)) {
      if (!ArrayBuffer.isView(got) || got.constructor !== v.constructor || (got as Uint8Array).length !== (v as Uint8Array).length) {
        throw new StateError(`${id}: field ${k} must be a ${v.constructor.name} of length ${(v as Uint8Array).length}`);
      }
    } else if (typeof v !== typeof got) {
      throw new StateError(`${id}: field ${k} must be a ${typeof v}`);
    }
  }
}

/** A deep copy of a state object (plain objects, arrays, typed arrays and scalars), so later changes to either side do not reach the other. */
export function cloneState<T>(v: T): T {
  if (ArrayBuffer.isView(v)) return (v as unknown as Uint8Array).slice() as unknown as T;
  if (Array.isArray(v)) return v.map((x) => cloneState(x)) as unknown as T;
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneState(x);
    return out as T;
  }
  return v;
}

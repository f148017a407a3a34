// The schema codec on its own: kinds and ranges are enforced, unknown and
// missing fields refused, structs and typed arrays copied, not shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bool, checkFields, defineState, loadChecked, saveFields, struct, u8, u16s, undeclaredProperties } from './schema.js';

class Dev {
  readonly id = 'dev';
  private _reg = 0;
  flag = false;
  table = new Uint16Array(4);
  inner = { a: 0, wiring: 'x' };
  loaded = 0;
  cache = 0;
  static readonly schema = defineState<Dev>(
    'dev',
    1,
    { reg: u8.at('_reg').range(0, 15), flag: bool, table: u16s(4), inner: struct({ a: u8 }) },
    { transient: ['inner.wiring', 'cache', 'loaded'], postLoad: (d) => d.loaded++ },
  );
  set(v: number): void {
    this._reg = v;
  }
}

test('save names fields as declared and copies arrays', () => {
  const d = new Dev();
  d.set(5);
  d.table[2] = 0x1234;
  const s = saveFields(Dev.schema.fields, d);
  assert.deepEqual(s, { reg: 5, flag: false, table: Uint16Array.from([0, 0, 0x1234, 0]), inner: { a: 0 } });
  d.table[2] = 0;
  assert.equal((s.table as Uint16Array)[2], 0x1234);
});

test('load checks first, then assigns and runs postLoad', () => {
  const d = new Dev();
  const s = { reg: 7, flag: true, table: new Uint16Array(4).fill(9), inner: { a: 3 } };
  loadChecked('dev', Dev.schema, d, s);
  assert.equal(d.loaded, 1);
  assert.deepEqual(saveFields(Dev.schema.fields, d), s);
  for (const [bad, re] of [
    [{ ...s, reg: 16 }, /dev\.reg must be between 0 and 15, not 16/],
    [{ ...s, reg: 1.5 }, /dev\.reg must be a u8/],
    [{ ...s, flag: 1 }, /dev\.flag must be a boolean/],
    [{ ...s, table: new Uint16Array(3) }, /dev\.table must be a Uint16Array of length 4/],
    [{ ...s, table: new Uint8Array(4) }, /dev\.table must be a Uint16Array/],
    [{ ...s, inner: { a: 300 } }, /dev\.inner\.a must be a u8/],
    [{ ...s, extra: 1 }, /unknown field extra/],
    [{ reg: 1 }, /dev\.flag is missing/],
  ] as [unknown, RegExp][]) {
    assert.throws(() => loadChecked('dev', Dev.schema, d, bad), re);
  }
  assert.equal(d.loaded, 1, 'a refused state runs no postLoad');
  assert.doesNotThrow(() => checkFields('dev', Dev.schema.fields, s));
});

test('the completeness check finds undeclared properties', () => {
  const d = new Dev();
  assert.deepEqual(undeclaredProperties(Dev.schema, d), []);
  (d as unknown as { surprise: number }).surprise = 1;
  d.inner = { a: 0, wiring: 'x', more: 2 } as never;
  assert.deepEqual(undeclaredProperties(Dev.schema, d).sort(), ['inner.more', 'surprise']);
});

// The schema codec on its own: kinds and ranges are enforced, unknown and
// missing fields refused, structs and typed arrays copied, not shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bool, checkFields, defineState, f64, loadChecked, saveFields, struct, structs, u8, u16s, undeclaredProperties } from './schema.js';
import { StateError } from './state.js';

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

class Unit {
  value = 0;
  private _deadline = -1;
  static readonly fields = {
    value: u8,
    // the parent holds the timer: the accessor gets it
    deadlineNs: f64.via(
      (u: Unit, p: Box) => p.deadlines[p.units.indexOf(u)],
      (u: Unit, v: number, p: Box) => (p.deadlines[p.units.indexOf(u)] = v),
    ),
  };
  get deadline(): number {
    return this._deadline;
  }
}

class Box {
  readonly id = 'box';
  readonly units = [new Unit(), new Unit()];
  readonly deadlines = [-1, -1];
  readonly pair = [new Unit(), new Unit()];
  queue = new Uint16Array(0);
  static readonly schema = defineState<Box>(
    'box',
    1,
    {
      first: struct(Unit.fields).at('units.0'),
      second: struct(Unit.fields).at('units.1'),
      pair: structs(2, { value: u8 }),
      queue: u16s(8).upTo(),
    },
    {
      transient: ['deadlines', 'units.0._deadline', 'units.1._deadline', 'pair[]._deadline'],
      check: (b, s, where) => {
        if ((s.queue as Uint16Array).length === 7) throw new StateError(`${where}: seven is refused by the object check`);
      },
    },
  );
}

test('struct arrays, dotted paths, variable-length arrays, parent-aware accessors and the object check', () => {
  const b = new Box();
  b.units[1].value = 9;
  b.deadlines[1] = 1234;
  b.pair[1].value = 3;
  b.queue = Uint16Array.of(1, 2, 3);
  const s = saveFields(Box.schema.fields, b);
  assert.deepEqual(s, {
    first: { value: 0, deadlineNs: -1 },
    second: { value: 9, deadlineNs: 1234 },
    pair: [{ value: 0 }, { value: 3 }],
    queue: Uint16Array.of(1, 2, 3),
  });
  const c = new Box();
  loadChecked('box', Box.schema, c, s);
  assert.deepEqual(saveFields(Box.schema.fields, c), s);
  assert.equal(c.deadlines[1], 1234);
  for (const [bad, re] of [
    [{ ...s, pair: [{ value: 1 }] }, /box\.pair must be an array of 2/],
    [{ ...s, pair: [{ value: 1 }, { value: 256 }] }, /box\.pair\[1\]\.value must be a u8/],
    [{ ...s, queue: new Uint16Array(9) }, /box\.queue must be a Uint16Array of at most length 8/],
    [{ ...s, queue: new Uint16Array(7) }, /seven is refused by the object check/],
    [{ ...s, second: { value: 1 } }, /box\.second\.deadlineNs is missing/],
  ] as [unknown, RegExp][]) {
    assert.throws(() => loadChecked('box', Box.schema, c, bad), re);
  }
  assert.deepEqual(saveFields(Box.schema.fields, c), s, 'a refused state changes nothing');
  assert.deepEqual(undeclaredProperties(Box.schema, c), []);
  (c.units[1] as unknown as { extra: number }).extra = 1;
  (c.pair[0] as unknown as { extra: number }).extra = 1;
  assert.deepEqual(undeclaredProperties(Box.schema, c).sort(), ['pair[].extra', 'units.1.extra']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Entries, EXIT_ENTRY } from './region.js';

test('Entries: the compact table answers as the dense one it was made from, at every page offset', () => {
  const dense = new Int16Array(4096);
  dense[0] = 1;
  dense[17] = 2;
  dense[18] = EXIT_ENTRY;
  dense[2048] = 300;
  dense[4095] = 32767;
  const e = Entries.from(dense);
  assert.equal(e.size, 5);
  for (let o = 0; o < 4096; o++) assert.equal(e.at(o), dense[o], `offset ${o}`);
  assert.equal(Entries.from(new Int16Array(4096)).at(100), 0);
  assert.ok(e.equals(Entries.from(dense.slice())));
  dense[18] = 3;
  assert.ok(!e.equals(Entries.from(dense)));
});

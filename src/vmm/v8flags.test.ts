import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { tuneV8 } from './v8flags.js';

const newSpace = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

test("the JS heap's young generation stays small under a compiler's short-lived garbage (peak RSS)", () => {
  tuneV8();
  const before = newSpace();
  // what the region compiler makes per page (maps of small objects), each
  // living a while: survivors of scavenges are what makes V8 grow the space
  const live: Map<number, { off: number; bytes: number[] }>[] = [];
  let made = 0;
  for (let i = 0; i < 400; i++) {
    const m = new Map<number, { off: number; bytes: number[] }>();
    for (let j = 0; j < 2000; j++) m.set(j, { off: j, bytes: [j, j + 1, j + 2] });
    live.push(m);
    if (live.length > 30) live.shift();
    made += m.size;
  }
  assert.equal(made, 800_000);
  // V8 grows it to 32 MiB (two 16 MiB semi-spaces) otherwise
  assert.ok(newSpace() <= Math.max(before, 4 << 20), `new space ${(newSpace() / 1048576).toFixed(1)} MiB (${(before / 1048576).toFixed(1)} before)`);
});

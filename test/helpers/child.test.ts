// Waiting on a tsvm child that has already died must fail at once, naming how it
// ended and what it said last, not after the wait's deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROMPT, TsvmChild } from './child.js';

test('a wait on a child that exits fails at once with its exit status and last output', async () => {
  const s = new TsvmChild(['run', '-bios', '/nonexistent/bios.bin']);
  const t0 = Date.now();
  await assert.rejects(s.waitFor(PROMPT, 0, 600_000, 'the shell prompt'), (e: Error) => {
    assert.match(e.message, /tsvm ended \(exit status 1\) before the shell prompt appeared/);
    assert.match(e.message, /cannot read BIOS image \/nonexistent\/bios\.bin: no such file/);
    return true;
  });
  assert.ok(Date.now() - t0 < 60_000, 'the wait ended with the child, not at its deadline');
});

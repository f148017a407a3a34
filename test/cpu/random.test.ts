// Randomized differential test (CI subset): seeds 1..4, 300 sequences each, on
// every execution tier (TSVM_MODES).
// More seeds: node dist/test/cpu/random.js --seeds 1-100
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tsvmAvailable, TSVM_BIN, TSVM_MODES } from './harness.js';
import { runSeed } from './random.js';

for (const mode of TSVM_MODES) {
  for (const seed of [1, 2, 3, 4]) {
    test(`cpu random [${mode.label}]: seed ${seed}`, { timeout: 180_000 }, async () => {
      const r = await runSeed(seed, 300, { qemuOnly: !tsvmAvailable(), accel: mode.accel });
      for (const o of r.outcomes) {
        assert.ok(!o.qemuProblem, `QEMU side failed for ${o.name}:\n${o.qemuProblem}`);
      }
      if (!tsvmAvailable()) assert.fail(`tsvm CLI not available (${TSVM_BIN} missing); QEMU side OK`);
      assert.ok(r.ok, r.report);
    });
  }
}

// One node:test test per test/cpu/asm/*.asm program and execution tier
// (TSVM_MODES: interpreter, compilation on first sight, default thresholds):
// tsvm's record stream must equal QEMU's.  When tsvm's CLI is missing the
// tests fail (after checking that the QEMU side ran and produced its records).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listTests, passed, runTest, tsvmAvailable, TSVM_BIN, TSVM_MODES } from './harness.js';

for (const name of listTests()) {
  for (const mode of TSVM_MODES) {
    test(`cpu differential [${mode.label}]: ${name}`, { timeout: 180_000 }, async () => {
      const o = await runTest(name, { accel: mode.accel });
      assert.ok(!o.qemuProblem, `QEMU side failed:\n${o.qemuProblem}`);
      assert.ok(o.qemuStream.records.length > 1, `QEMU produced no records for ${name}`);
      if (!tsvmAvailable()) {
        assert.fail(`tsvm CLI not available (${TSVM_BIN} missing); QEMU side OK with ${o.qemuStream.records.length} records`);
      }
      assert.ok(passed(o), o.report || `tsvm run failed: exit ${o.tsvm?.code}`);
    });
  }
}

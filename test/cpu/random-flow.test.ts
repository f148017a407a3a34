// Random control-flow programs (test/cpu/random-flow.ts) against QEMU on every
// execution tier (TSVM_MODES): branches, loops and calls across code pages,
// self-modifying stores (also into the loop that is running), page-table
// changes with INVLPG / CR3 reloads, tsvm run in slices of random lengths.
// More seeds: node dist/test/cpu/random-flow.js --seeds 1-50
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TSVM_MODES } from './harness.js';
import { explain, runFlowRom, seedRom, sliceSeedOf } from './random-flow.js';

const SEEDS = [1, 2, 3];

for (const seed of SEEDS) {
  test(`cpu random flow: seed ${seed}`, { timeout: 300_000 }, async (t) => {
    const rom = seedRom(seed);
    for (const mode of TSVM_MODES) {
      await t.test(`[${mode.label}]`, async () => {
        const ss = sliceSeedOf(seed, mode.label);
        const r = await runFlowRom(rom, mode.accel, ss);
        assert.ok(!r.qemuProblem, `QEMU side failed for ${rom.name}: ${r.qemuProblem}`);
        const where = r.mismatches.length ? explain(r.mismatches, rom) : '';
        assert.ok(
          r.ok,
          `seed ${seed} [${mode.label}] slice seed ${ss}: ${where}\n` +
            `reproduce and shrink: node dist/test/cpu/random-flow.js --seeds ${seed} --mode ${mode.label} --reduce\n${r.report}`,
        );
      });
    }
  });
}

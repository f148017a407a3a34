// Bochs as the second reference: the programs where QEMU departs from the SDM
// (test/cpu/asm/qemu-diff/*.asm), sys-vme.asm (QEMU has no VME; on QEMU the
// ROM emulates it in software, on Bochs it runs on the CPU's own VME) and the
// cases where Bochs itself departs from the SDM (test/cpu/asm/bochs-diff/*.asm)
// run on tsvm and on Bochs, and tsvm's stream must equal Bochs' except for the
// differences listed in KNOWN_DIFFERENCES (docs/cpu-qemu-differences.md,
// "Bochs").  Fails when Bochs or tsvm's CLI is missing (tools/setup.sh
// installs Bochs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { assemble, ASM_DIR, BOCHS_BIN, bochsAvailable, compareOn, tsvmAvailable, TSVM_BIN, TSVM_MODES, type PairOutcome } from './harness.js';

const sub = (dir: string): string[] =>
  existsSync(join(ASM_DIR, dir))
    ? readdirSync(join(ASM_DIR, dir))
        .filter((f) => f.endsWith('.asm'))
        .map((f) => `${dir}/${f.slice(0, -4)}`)
        .sort()
    : [];

export const BOCHS_PROGRAMS = ['sys-vme', ...sub('qemu-diff'), ...sub('bochs-diff')];

/**
 * Known differences: the mismatch lines (the record line of a structural
 * divergence, or the field lines) the comparison must report for a program,
 * in order, and nothing else. `side` says who departs from the SDM: 'bochs'
 * (docs/cpu-qemu-differences.md, "Bochs") or 'tsvm' (a tsvm bug not fixed
 * yet: when the test fails because the mismatch is gone, delete the entry).
 */
export interface KnownDifference {
  side: 'bochs' | 'tsvm';
  what: string;
  lines: RegExp[];
}
/** The lines of `n` bytes from `addr` that tsvm left as the test's 0x5A fill and Bochs wrote. */
const written = (addr: number, n: number): RegExp[] =>
  Array.from({ length: n }, (_, i) => new RegExp(`^byte 0x${(addr + i).toString(16).padStart(8, '0')}: tsvm 0x5a bochs 0x[0-9a-f]{2}$`));

export const KNOWN_DIFFERENCES: Record<string, KnownDifference> = {
  'bochs-diff/fpu-image-limit': {
    side: 'bochs',
    what:
      'x87/FXSAVE images crossing a segment limit: Bochs writes (or, FRSTOR, loads) the pieces inside the limit before the #GP, ' +
      'and in real mode wraps FNSAVE at 0xFFFF instead of faulting; the SDM faults first and the instruction changes nothing',
    lines: [
      /^record: tsvm exception #GP at 0xf000:0x[0-9a-f]+ bochs dump 'rm:fnsave crossing 0xFFFF'$/,
      ...written(0x1ffc0, 16), // real mode FNSAVE at 0xFFC0
      ...written(0x100f4, 12), // o16 FNSTENV at FS:0xF4 (limit 0xFF): FCW..FDP
      ...written(0x100f0, 16), // FXSAVE at FS:0xF0: the first 16 bytes
      ...written(0x100f7, 8), // FBSTP at FS:0xF7: 8 of 10 bytes
      ...written(0x100f8, 8), // FSTP m80 at FS:0xF8: the significand
      ...[0, 1, 2, 3].map((i) => new RegExp(`^byte 0x000101c${i}: tsvm 0x[0-9a-f]{2} bochs 0x[0-9a-f]{2}$`)), // FCW, FSW loaded by a faulting FRSTOR
    ],
  },
  'bochs-diff/pvi-vif-vip': {
    side: 'bochs',
    what: 'CR4.PVI, IRETD to CPL 3 with VIF=VIP=1: Bochs raises #GP(0) at the first code fetch, the SDM does not fault until STI',
    lines: [/^record: tsvm dump 'p32:back from cpl3 with VIF VIP [^']*' bochs UNEXPECTED exception #GP at 0x006b:/],
  },
};

function check(name: string, o: PairOutcome): void {
  assert.ok(!o.subject.problem, `tsvm run failed:\n${o.report}`);
  const known = KNOWN_DIFFERENCES[name];
  if (!known) {
    assert.ok(!o.ref.problem, `Bochs run failed:\n${o.report}`);
    assert.ok(o.ref.stream.records.length > 1, `Bochs produced no records for ${name}`);
    assert.equal(o.report, '', o.report);
    return;
  }
  const lines = o.mismatches.flatMap((m) => m.fields);
  const ok = lines.length === known.lines.length && known.lines.every((re, i) => re.test(lines[i]!));
  const hint = known.side === 'tsvm' && lines.length === 0 ? '\n(the known tsvm bug is gone: delete its KNOWN_DIFFERENCES entry)' : '';
  assert.ok(ok, `expected exactly the known difference in ${name} (${known.side} departs from the SDM: ${known.what}):\n  ${known.lines.join('\n  ')}\ngot:\n${o.report || '(no difference)'}${hint}`);
}

for (const name of BOCHS_PROGRAMS) {
  for (const mode of TSVM_MODES) {
    test(`cpu vs bochs [${mode.label}]: ${name}`, { timeout: 180_000 }, async () => {
      if (!bochsAvailable()) assert.fail(`Bochs not available (${BOCHS_BIN}; Debian: apt-get install bochs, see tools/setup.sh)`);
      if (!tsvmAvailable()) assert.fail(`tsvm CLI not available (${TSVM_BIN} missing)`);
      const rom = assemble(join(ASM_DIR, name + '.asm'));
      check(name, await compareOn(name, rom, 'bochs', 'tsvm', mode.accel));
    });
  }
}

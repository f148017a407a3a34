// Fuzz of snapshot files as a user meets them: a VM folder's suspended
// state (what `quit --save` wrote) with bytes flipped or cut off, then
// `tsvm start`. Each start must resume or refuse with one line saying what
// is wrong (exit status 1, "tsvm: ..."), never crash with a stack trace,
// and leave every file outside the VM folder as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';
import { seeded } from '../helpers/seeded.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-snapfuzz-'));

// a guest that echoes COM1 input back
const ECHO = `bits 16
org 0
start:
${COM1_INIT_8N1}
.wait: mov dx, 0x3fd
in al, dx
test al, 1
jz .wait
mov dx, 0x3f8
in al, dx
out dx, al
jmp .wait
${ROM_TAIL}
`;

/** Every file under `d` but the VM folder, with its size and modification time. */
function outside(d: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (e.name === 'e.tsvm') continue;
    const p = join(d, e.name);
    if (e.isDirectory()) out.push(...outside(p));
    else {
      const st = statSync(p);
      out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  }
  return out.sort();
}

test('flipped and truncated suspended states are resumed or refused with a clear error by tsvm start, never a crash', { timeout: 600_000 }, async (t) => {
  writeFileSync(join(dir, 'echo.asm'), ECHO);
  assert.equal(spawnSync('nasm', ['-f', 'bin', join(dir, 'echo.asm'), '-o', join(dir, 'echo.bin')]).status, 0);
  const c = spawnSync(process.execPath, [TSVM, 'create', 'e', '-bios', join(dir, 'echo.bin'), '-m', '8M', '-disk-size', '4M'], { cwd: dir, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  // a suspended state: start, see the echo, quit --save
  const s = spawn(process.execPath, [TSVM, 'start', 'e', '-timeout', '60'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  s.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  s.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => s.on('exit', (code) => r(code)));
  s.stdin.write('ping');
  for (let i = 0; i < 600 && !out.includes('ping'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /ping/);
  s.stdin.write('\x01cquit --save\r');
  assert.equal(await exited, 0, out);
  const sus = join(dir, 'e.tsvm', 'suspended.snap');
  const good = readFileSync(sus);
  const before = outside(dir);

  const rnd = seeded(0x1b873593);
  let refused = 0;
  let resumed = 0;
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(good);
    const bad = i % 4 === 0 ? b.subarray(0, rnd(b.length)) : b;
    if (i % 4 !== 0) for (let k = 0; k <= rnd(3); k++) bad[rnd(bad.length)] ^= 1 << rnd(8);
    writeFileSync(sus, bad);
    const r = spawnSync(process.execPath, [TSVM, 'start', 'e', '-timeout', '2'], { cwd: dir, encoding: 'utf8', input: '', timeout: 60_000 });
    assert.equal(r.signal, null, `mutation ${i}: tsvm start was killed (${r.signal}): ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at |Uncaught|node:internal/, `mutation ${i}: a crash: ${r.stderr}`);
    if (r.status === 1) {
      assert.match(r.stderr, /^tsvm: start: cannot resume e: /m, `mutation ${i}: ${r.stderr}`);
      refused++;
    } else {
      // accepted (a flip the checks cannot see, e.g. in padding): it resumed and ran to its timeout
      assert.equal(r.status, 3, `mutation ${i}: exit status ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, /resuming e where it was suspended/);
      resumed++;
    }
    assert.deepEqual(outside(dir), before, `mutation ${i}: a file outside the VM folder changed`);
  }
  t.diagnostic(`refused ${refused}, resumed ${resumed} of 40`);
  assert.ok(refused >= 30, `only ${refused} of 40 damaged states refused`);
  rmSync(dir, { recursive: true, force: true });
});

// tools/stack.mjs as a developer meets it: a tsvm process whose guest spins,
// its stack printed from outside without stopping it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TSVM } from '../helpers/child.js';

test('tools/stack.mjs prints where a running VM is, and the VM goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-stack-'));
  const src = join(dir, 'spin.asm');
  const bin = join(dir, 'spin.bin');
  // a ROM that spins for ever with interrupts off: the guest never halts
  writeFileSync(src, 'bits 16\norg 0\nstart:\ncli\nspin: inc ax\njmp spin\ntimes 0xfff0 - ($ - $$) db 0\njmp 0xf000:start\ntimes 0x10000 - ($ - $$) db 0\n');
  const asm = spawnSync('nasm', ['-f', 'bin', src, '-o', bin], { encoding: 'utf8' });
  assert.equal(asm.status, 0, `nasm: ${asm.stderr}`);
  const port = 20000 + (process.pid % 20000);
  const vm = spawn(process.execPath, [`--inspect-port=127.0.0.1:${port}`, TSVM, 'run', '-bios', bin, '-m', '1M'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  vm.stderr.on('data', (d) => (err += d));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(vm.exitCode, null, `the VM exited early (${vm.exitCode}): ${err.slice(-400)}`);
    const r = spawnSync(process.execPath, [join(ROOT, 'tools/stack.mjs'), String(vm.pid), '--port', String(port), '--pauses', '2'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `tools/stack.mjs failed (${r.status}): ${r.stderr}`);
    assert.match(r.stdout, /pause 1:\n {2}at /);
    assert.match(r.stdout, /pause 2:/);
    // the spinning guest keeps the runner in its slices
    assert.match(r.stdout, /at runSlice \(.*board\/machine\.js/);
    assert.equal(vm.exitCode, null, 'the VM still runs after the pauses');
  } finally {
    vm.kill('SIGKILL');
  }
  const bad = spawnSync(process.execPath, [join(ROOT, 'tools/stack.mjs'), 'x'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /usage: node tools\/stack\.mjs PID/);
});

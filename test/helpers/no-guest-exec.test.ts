// The guard the default-guest test builds its image under: it must really make
// a guest binary impossible to start, or that test proves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './child.js';

const GUARD = join(ROOT, 'dist/test/helpers/no-guest-exec.js');

/** An ELF header for i386 (e_machine 3): enough for the guard and for the kernel to try it. */
function i386Elf(path: string): void {
  const h = Buffer.alloc(52);
  h.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(3, 18); // EM_386
  writeFileSync(path, h);
  chmodSync(path, 0o755);
}

test('no-guest-exec refuses an i386 binary and anything unpacked by the image builder, and logs every start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-guard-'));
  const elf = join(dir, 'busybox');
  i386Elf(elf);
  const unpacked = mkdtempSync(join(tmpdir(), 'tsvm-image-'));
  const script = join(unpacked, 'tool.sh');
  writeFileSync(script, '#!/bin/sh\necho ran\n');
  chmodSync(script, 0o755);
  const log = join(dir, 'exec.log');
  const probe = `
    import { spawnSync, execFileSync } from 'node:child_process';
    const tries = [() => spawnSync(${JSON.stringify(elf)}, ['--list']), () => execFileSync(${JSON.stringify(script)}), () => spawnSync('true')];
    for (const t of tries) { try { const r = t(); console.log('ran', r && r.status !== undefined ? r.status : 'ok'); } catch (e) { console.log('refused', e.code); } }
  `;
  const r = spawnSync(process.execPath, ['--import', GUARD, '--input-type=module', '-e', probe], { encoding: 'utf8', env: { ...process.env, TSVM_EXEC_LOG: log } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['refused EACCES', 'refused EACCES', 'ran 0']);
  const entries = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { cmd: string; refused?: string });
  assert.equal(entries.length, 3);
  assert.match(entries[0].refused ?? '', /ELF for machine 3/);
  assert.match(entries[1].refused ?? '', /tsvm-image-/);
  assert.equal(entries[2].refused, undefined);
});

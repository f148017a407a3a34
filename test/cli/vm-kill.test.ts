// SIGKILL at many points: tsvm is killed while it saves or loads snapshots,
// suspends, or reverts a stopped VM, at a different moment each time. After
// every kill the VM must still open: the lock is taken over, the tree lists
// only snapshots whose files are complete, and the VM starts and answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmFolder } from '../../src/vmm/folder.js';
import { readSnapshotFile } from '../../src/vmm/snapshot.js';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';
import { seeded } from '../helpers/seeded.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-kill-'));

// a guest that echoes COM1 input back (8N1 at 115200), so a start can be seen answering
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

function tsvm(...args: string[]) {
  return spawnSync(process.execPath, [TSVM, ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
}

/** Start the VM, wait until it echoes, send `keys`, and SIGKILL it `delayMs` later. */
async function startAndKill(keys: string, delayMs: number): Promise<string> {
  const c = spawn(process.execPath, [TSVM, 'start', 'k', '-timeout', '120'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  c.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  c.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const done = new Promise<void>((r) => c.on('exit', () => ((exited = true), r())));
  c.stdin.write('ping');
  const deadline = Date.now() + 60_000;
  while (!out.includes('ping')) {
    if (exited) throw new Error(`tsvm start exited before answering: ${out}`);
    if (Date.now() > deadline) throw new Error(`no echo from the guest: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  c.stdin.write(keys);
  await new Promise((r) => setTimeout(r, delayMs));
  c.kill('SIGKILL');
  await done;
  return out;
}

/** qemu-img check: clean, or leaked clusters only (what a kill may leave; never corruption). */
function qemuCheck(img: string, what: string): void {
  const r = spawnSync('qemu-img', ['check', img], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 3, `${what}: qemu-img check exited ${r.status}: ${r.stdout}${r.stderr}`);
}

test('killing tsvm at random points never leaves the VM unusable', { timeout: 900_000 }, async (t) => {
  writeFileSync(join(dir, 'echo.asm'), ECHO);
  assert.equal(spawnSync('nasm', ['-f', 'bin', join(dir, 'echo.asm'), '-o', join(dir, 'echo.bin')]).status, 0);
  const c = tsvm('create', 'k', '-bios', join(dir, 'echo.bin'), '-m', '8M', '-disk-size', '4M');
  assert.equal(c.status, 0, c.stderr);
  const path = join(dir, 'k.tsvm');
  const rnd = seeded(0x9e3779b9);
  for (let i = 0; i < 16; i++) {
    const op = i % 4;
    // from at once to well after the command completes, so kills land before, during and after the writes
    const delay = rnd(op === 0 ? 1200 : 400);
    if (op === 0) await startAndKill(`\x01csavevm s${i}\r`, delay);
    else if (op === 1) await startAndKill(`\x01cloadvm s${i - 1}\r`, delay);
    else if (op === 2) await startAndKill('\x01cquit --save\r', delay);
    else {
      // a revert of the stopped VM, killed part way
      const names = VmFolder.open(path).tree().snapshots.map((s) => s.name);
      if (names.length) {
        const r = spawn(process.execPath, [TSVM, 'snapshot', 'k', 'revert', names[rnd(names.length)]], { cwd: dir });
        await new Promise((res) => setTimeout(res, rnd(60)));
        r.kill('SIGKILL');
        await new Promise((res) => r.on('exit', res));
      }
    }
    // the VM opens; every snapshot the tree lists is complete; a suspended state, if any, is whole
    const vm = VmFolder.open(path);
    for (const s of vm.tree().snapshots) {
      if (s.hasState) assert.doesNotThrow(() => readSnapshotFile(join(path, 'snapshots', `${s.id}.snap`)), `snapshot ${s.name} after kill ${i}`);
      const img = join(path, 'snapshots', `${s.id}.hda.qcow2`);
      assert.ok(existsSync(img), `snapshot ${s.name} lost its disk after kill ${i}`);
      qemuCheck(img, `snapshot ${s.name} after kill ${i}`);
    }
    const sus = vm.suspendedPath();
    if (sus) assert.doesNotThrow(() => readSnapshotFile(sus), `suspended state after kill ${i}`);
    const disk = join(path, 'disks', 'hda.qcow2');
    qemuCheck(disk, `disk after kill ${i}`);
    const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '--backing-chain', disk], { encoding: 'utf8' }).stdout) as { 'virtual-size': number }[];
    assert.equal(info[0]['virtual-size'], 4 << 20, `disk size after kill ${i}`);
  }
  t.diagnostic(`snapshots completed before their kill: ${VmFolder.open(path).tree().snapshots.length} of 4 attempts`);
  // and it still starts and answers (taking over the dead process's lock)
  const out = await startAndKill('', 0);
  assert.match(out, /ping/);
});

// SIGKILL during clones: `tsvm clone --linked` (at a new snapshot, and at an
// existing one) and `tsvm clone` (full) are killed at a different moment
// each time, from before they start work to after they end. After every
// kill the source still opens, lists only snapshots whose images are whole,
// and its images pass qemu-img check; a clone folder, if it exists, opens
// and its disks' backing chains resolve and pass qemu-img check; a share
// record left by a linked clone that never came into place does not stop
// the snapshot's deletion. Then the source and a clone of each kind start
// and answer, and a new clone still works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBlockFile } from '../../src/host/node/block.js';
import { VmFolder } from '../../src/vmm/folder.js';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';
import { seeded } from '../helpers/seeded.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-clonekill-'));

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

/** qemu-img check: clean, or leaked clusters only (what a kill may leave; never corruption). */
function qemuCheck(img: string, what: string): void {
  const r = spawnSync('qemu-img', ['check', img], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 3, `${what}: qemu-img check exited ${r.status}: ${r.stdout}${r.stderr}`);
}

/** Every qcow2 image in a VM folder passes qemu-img check and its backing chain opens. */
function checkFolder(path: string, what: string): void {
  const vm = VmFolder.open(path);
  for (const s of vm.tree().snapshots) {
    const img = join(path, 'snapshots', `${s.id}.hda.qcow2`);
    assert.ok(existsSync(img), `${what}: snapshot ${s.name} has no disk image`);
  }
  for (const sub of ['disks', 'snapshots']) {
    for (const f of readdirSync(join(path, sub)).filter((n) => n.endsWith('.qcow2'))) {
      const img = join(path, sub, f);
      qemuCheck(img, `${what}: ${sub}/${f}`);
      const info = spawnSync('qemu-img', ['info', '--backing-chain', '--output=json', img], { encoding: 'utf8' });
      assert.equal(info.status, 0, `${what}: the backing chain of ${sub}/${f} does not open: ${info.stderr}`);
    }
  }
}

/** Run `tsvm ARGS` and SIGKILL it `delayMs` after the spawn (it may have ended by then). */
async function runAndKill(args: string[], delayMs: number): Promise<void> {
  const c = spawn(process.execPath, [TSVM, ...args], { cwd: dir, stdio: 'ignore' });
  const done = new Promise((r) => c.on('exit', r));
  await new Promise((r) => setTimeout(r, delayMs));
  c.kill('SIGKILL');
  await done;
}

/** Start a VM folder, see the guest echo, and kill it. */
async function answers(path: string): Promise<void> {
  const c = spawn(process.execPath, [TSVM, 'start', path, '-timeout', '120'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  c.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  c.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const done = new Promise<void>((r) => c.on('exit', () => ((exited = true), r())));
  c.stdin.write('ping');
  const deadline = Date.now() + 60_000;
  try {
    while (!out.includes('ping')) {
      if (exited) throw new Error(`tsvm start ${path} exited before answering: ${out}`);
      if (Date.now() > deadline) throw new Error(`no echo from ${path}: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    c.kill('SIGKILL');
    await done;
  }
}

test('killing tsvm clone (linked and full) at random points never leaves the source or a clone unusable', { timeout: 600_000 }, async (t) => {
  writeFileSync(join(dir, 'echo.asm'), ECHO);
  assert.equal(spawnSync('nasm', ['-f', 'bin', join(dir, 'echo.asm'), '-o', join(dir, 'echo.bin')]).status, 0);
  const c = tsvm('create', 'src', '-bios', join(dir, 'echo.bin'), '-m', '8M', '-disk-size', '64M');
  assert.equal(c.status, 0, c.stderr);
  const src = join(dir, 'src.tsvm');
  // 16 MiB of data in the disk, so a full clone has something to copy while it is killed
  const blk = openBlockFile(join(src, 'disks', 'hda.qcow2'), 'rw', 'test', 'qcow2');
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < 16; i++) blk.backend.write(i * (4 << 20), chunk.fill(i + 1));
  blk.backend.flush();
  blk.close();
  assert.equal(tsvm('snapshot', 'src', 'save', 'base').status, 0);

  // how long each kind takes when left alone (and that it works)
  const ops = [
    (n: string) => ['clone', '--linked', 'src', n],
    (n: string) => ['clone', '--linked', 'src', n, '--snapshot', 'base'],
    (n: string) => ['clone', 'src', n],
  ];
  const took = ops.map((op, k) => {
    const t0 = Date.now();
    const r = tsvm(...op(`whole${k}`));
    assert.equal(r.status, 0, r.stderr);
    checkFolder(join(dir, `whole${k}.tsvm`), `clone whole${k}`);
    return Date.now() - t0;
  });
  t.diagnostic(`uninterrupted: linked ${took[0]} ms, linked at base ${took[1]} ms, full ${took[2]} ms`);

  const rnd = seeded(0x2545f491);
  let landed = 0;
  for (let i = 0; i < 24; i++) {
    const k = i % 3;
    const name = `c${i}`;
    // from at once (Node still starting) to a little after the command would end
    await runAndKill(ops[k](name), rnd(Math.ceil(took[k] * 1.2)));
    const dst = join(dir, `${name}.tsvm`);
    checkFolder(src, `the source after kill ${i}`);
    if (existsSync(dst)) {
      landed++;
      checkFolder(dst, `clone ${name} after its kill`);
    }
    // a linked clone killed before it came into place may leave its base snapshot with a share record: it must not block deleting it
    if (k === 0 && !existsSync(dst) && VmFolder.open(src).tree().snapshots.some((s) => s.name === `clone-${name}`)) {
      const d = tsvm('snapshot', 'src', 'delete', `clone-${name}`);
      assert.equal(d.status, 0, `deleting clone-${name}, whose clone never came into place: ${d.stderr}`);
    }
  }
  t.diagnostic(`clones in place after their kill: ${landed} of 24`);
  // a killed clone leaves at most a NAME.tsvm.creating-PID folder beside the others, never a half VM under its name
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.tsvm'))) assert.doesNotThrow(() => VmFolder.open(join(dir, f)), f);

  // the source and the uninterrupted clones still start; a new linked clone still works and starts
  await answers(src);
  await answers(join(dir, 'whole0.tsvm'));
  await answers(join(dir, 'whole2.tsvm'));
  const again = tsvm('clone', '--linked', 'src', 'again');
  assert.equal(again.status, 0, again.stderr);
  await answers(join(dir, 'again.tsvm'));
  checkFolder(src, 'the source at the end');
  rmSync(dir, { recursive: true, force: true });
});

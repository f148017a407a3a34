// What the CLI's commands load: layering rules the compiler does not check
// (a project reference reaches its references' references too). src/cli
// imports src/vmm and src/server only (DESIGN.md, "Layers"), and the
// commands that work on VM folders (list, snapshot, create, clone) load
// neither the emulator (CPU, JIT, devices, board), nor the daemon, nor the
// WebSocket library: main.ts imports each command's module when it runs,
// because a short command's time is mostly Node's start-up and loading its
// modules (docs/vmm.md, "Commands load what they use"). A linked clone and
// a snapshot of a stopped VM do not load the qcow2 reader or the snapshot
// codec either (only a revert opens the snapshot's images and reads its
// state). Module lists, not timings: those are bench/clone.ts's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as nodeModule from 'node:module';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');

test('src/cli imports node:, its own modules, src/vmm and src/server only', () => {
  const cli = join(ROOT, 'src/cli');
  const bad: string[] = [];
  for (const f of readdirSync(cli).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const src = readFileSync(join(cli, f), 'utf8');
    for (const m of src.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!/^(node:|\.\/|\.\.\/vmm\/|\.\.\/server\/)/.test(spec)) bad.push(`${f}: ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

/** Modules no VM folder command may load. */
const NEVER = [/\/dist\/src\/(cpu|jit|bus|time)\//, /\/dist\/src\/devices\/(?!backends\.js$)/, /\/dist\/src\/board\/(?!rtc-epoch\.js$)/, /\/dist\/src\/server\/(?!discovery\.js$)/, /\/node_modules\/ws\//];
/** Nor may these commands load the qcow2 reader or the snapshot codec (machine states). */
const NO_CODECS = [/\/dist\/src\/storage\/(qcow2|open|raw)\.js$/, /\/dist\/src\/host\/node\/block\.js$/, /\/dist\/src\/(vmm\/snapshot|state\/codec)\.js$/];

// module.register (the loader hook that lists the modules) came in Node 20.6
test('the VM folder commands load neither the emulator nor the daemon', { skip: !('register' in nodeModule) && 'needs module.register (Node 20.6 or later)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-cli-modules-'));
  try {
    const rom = join(dir, 'rom.bin');
    writeFileSync(rom, Buffer.alloc(65536, 0xf4)); // HLT: never run here
    const log = join(dir, 'loaded.txt');
    // a loader hook that writes down every file module loaded (it runs on the loader's thread: one append each)
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(
        `import { appendFileSync } from 'node:fs';\nexport async function load(url, ctx, next) { if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx); }`,
      )}));\n`,
    );
    const run = (args: string[], status = 0): string[] => {
      rmSync(log, { force: true });
      const r = spawnSync(process.execPath, ['--import', pathToFileURL(hook).href, TSVM, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_DATA_HOME: join(dir, 'data') } });
      assert.equal(r.status, status, `tsvm ${args.join(' ')}: ${r.stderr}`);
      return readFileSync(log, 'utf8').trim().split('\n');
    };
    const check = (args: string[], rules: RegExp[], status = 0) => {
      const loaded = run(args, status);
      assert.ok(loaded.some((u) => u.endsWith('/dist/src/cli/main.js')), `tsvm ${args.join(' ')}: the hook saw nothing`);
      const wrong = loaded.filter((u) => rules.some((r) => r.test(u)));
      assert.deepEqual(wrong, [], `tsvm ${args.join(' ')} loaded modules it does not need`);
    };
    check(['create', 'box', '-bios', rom, '-disk-size', '16M'], NEVER);
    check(['create', '--help'], NEVER);
    check(['list'], [...NEVER, ...NO_CODECS]);
    check(['snapshot', 'box', 'save', 'one'], [...NEVER, ...NO_CODECS]);
    check(['snapshot', 'box', 'list'], [...NEVER, ...NO_CODECS]);
    check(['clone', '--linked', 'box', 'linked'], [...NEVER, ...NO_CODECS]);
    check(['clone', 'box', 'full'], [...NEVER, ...NO_CODECS]);
    check(['clone', 'nosuch', 'other'], [...NEVER, ...NO_CODECS], 1);
    check(['snapshot', 'box', 'revert', 'one'], NEVER); // opens the snapshot's images and reads its state: the codecs, not the machine
    // and the hook does see the emulator when a command needs it
    assert.ok(run(['start', '--help']).some((u) => /\/dist\/src\/board\/machine\.js$/.test(u)), 'tsvm start --help: the hook did not see the machine load');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

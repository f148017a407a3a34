/**
 * Node options that preload code reach the VM processes: a daemon started
 * as `node --import HOOK bin/tsvm.js serve` (a coverage or instrumentation
 * hook, say) runs HOOK in each VM process too, and one given in NODE_OPTIONS
 * as well; the VM process keeps its own heap limit, and the daemon's other
 * Node flags (here a heap size of its own) stay with the daemon. The hook
 * appends its process's pid and main module to a file. No Linux boot: the
 * VM is bare SeaBIOS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../helpers/daemon.js';
import { preloadExecArgv } from '../../src/vmm/worker-channel.js';

test('preloadExecArgv keeps the flags that load code, with their values, and nothing else', () => {
  assert.deepEqual(
    preloadExecArgv(['--max-old-space-size=4096', '--import', './a.mjs', '--inspect=9229', '--require=./b.cjs', '-r', 'c', '--experimental-loader', './l.mjs', '--loader=./m.mjs', '--enable-source-maps', '--conditions', 'dev', '--stack-size=900', '--no-warnings']),
    ['--import', './a.mjs', '--require=./b.cjs', '-r', 'c', '--experimental-loader', './l.mjs', '--loader=./m.mjs', '--enable-source-maps', '--conditions', 'dev'],
  );
  assert.deepEqual(preloadExecArgv([]), []);
  assert.deepEqual(preloadExecArgv(['--import']), [], 'a flag without its value is dropped');
});

test('tsvm serve under node --import (and NODE_OPTIONS --require): the hooks run in the VM process too', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsvm-preload-'));
  const mark = join(tmp, 'marks');
  const hook = (kind: string) => `require('node:fs').appendFileSync(process.env.TSVM_TEST_MARK, '${kind} ' + process.pid + ' ' + require('node:path').basename(process.argv[1] ?? '') + '\\n');\n`;
  writeFileSync(join(tmp, 'hook.mjs'), `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${hook('import')}`);
  writeFileSync(join(tmp, 'hook.cjs'), hook('require'));
  const env = { ...process.env, TSVM_TEST_MARK: mark, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(tmp, 'hook.cjs')}`.trim() };
  const d = await new Daemon([], undefined, { nodeArgs: ['--max-old-space-size=1234', '--import', join(tmp, 'hook.mjs')], env }).ready();
  t.after(() => d.killAll());

  assert.equal((await d.api('POST', '/api/vms', { name: 'vm', guest: 'firmware', memoryMiB: 16 })).status, 201);
  assert.equal((await d.api('POST', '/api/vms/vm/start')).status, 200);
  const pid = ((await d.api('GET', '/api/vms/vm')).json as { pid: number }).pid;
  assert.equal(typeof pid, 'number');
  d.vmPids.push(pid);
  const marks = () => (existsSync(mark) ? readFileSync(mark, 'utf8') : '');
  for (let i = 0; i < 300 && !marks().includes(`import ${pid} `); i++) await new Promise((r) => setTimeout(r, 100));
  const daemonPid = d.child.child.pid as number;
  const m = marks();
  assert.match(m, new RegExp(`^import ${daemonPid} tsvm\\.js$`, 'm'), `the daemon ran the --import hook:\n${m}`);
  assert.match(m, new RegExp(`^require ${daemonPid} tsvm\\.js$`, 'm'), `the daemon ran the NODE_OPTIONS hook:\n${m}`);
  assert.match(m, new RegExp(`^import ${pid} vm-process\\.js$`, 'm'), `the VM process ran the --import hook:\n${m}`);
  assert.match(m, new RegExp(`^require ${pid} vm-process\\.js$`, 'm'), `the VM process ran the NODE_OPTIONS hook:\n${m}`);
  // the VM process's own heap limit, not the daemon's heap flag
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.ok(argv.includes('--max-old-space-size=256'), `the VM's heap limit: ${argv.join(' ')}`);
  assert.ok(!argv.includes('--max-old-space-size=1234'), `not the daemon's heap flag: ${argv.join(' ')}`);
  assert.equal(argv[argv.indexOf('--import') + 1], join(tmp, 'hook.mjs'));
});

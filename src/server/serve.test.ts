import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateToken, parseServeArgs, ServeUsageError, systemdUnit, DEFAULT_PORT } from './serve.js';
import { checkName, StoreError } from './store.js';

test('serve options: loopback by default; --listen, --dir, --shutdown-wait; bad values say what is wrong', () => {
  const a = parseServeArgs([]);
  assert.ok(a !== 'help');
  assert.equal(a.host, '127.0.0.1');
  assert.equal(a.port, DEFAULT_PORT);
  const b = parseServeArgs(['--listen', '[::1]:9000', '--dir=/tmp/x', '--shutdown-wait', '5']);
  assert.ok(b !== 'help');
  assert.deepEqual([b.host, b.port, b.dir, b.shutdownWaitMs], ['::1', 9000, '/tmp/x', 5000]);
  assert.throws(() => parseServeArgs(['--listen', 'localhost']), (e: Error) => e instanceof ServeUsageError && /is not ADDR:PORT/.test(e.message));
  assert.throws(() => parseServeArgs(['--listen', '1.2.3.4:70000']), ServeUsageError);
  assert.throws(() => parseServeArgs(['--shutdown-wait', 'soon']), /not a number of seconds/);
  assert.throws(() => parseServeArgs(['--frobnicate']), /unknown option '--frobnicate'/);
  const c = parseServeArgs(['--max-upload-mib', '700']);
  assert.ok(c !== 'help');
  assert.equal(c.maxUploadBytes, 700 * 1048576);
  assert.match(systemdUnit(c), /--max-upload-mib 700$/m);
  assert.doesNotMatch(systemdUnit(a), /--max-upload-mib/);
  for (const bad of ['0', '1.5', 'lots']) assert.throws(() => parseServeArgs(['--max-upload-mib', bad]), /is not a whole number of MiB/);
  assert.equal(parseServeArgs(['--help']), 'help');
  // each VM in a process of its own unless --isolation thread
  assert.equal(a.isolation, 'process');
  const t = parseServeArgs(['--isolation', 'thread']);
  assert.ok(t !== 'help');
  assert.equal(t.isolation, 'thread');
  assert.match(systemdUnit(t), /--isolation thread$/m);
  assert.doesNotMatch(systemdUnit(a), /--isolation/);
  assert.throws(() => parseServeArgs(['--isolation', 'vm']), /--isolation 'vm' is not one of process, thread/);
  // VM processes 10 nice steps below the daemon unless --vm-niceness says otherwise
  assert.equal(a.vmNiceness, 10);
  for (const [v, n] of [['0', 0], ['19', 19], ['5', 5]] as const) {
    const o = parseServeArgs(['--vm-niceness', v]);
    assert.ok(o !== 'help');
    assert.equal(o.vmNiceness, n);
    assert.match(systemdUnit(o), new RegExp(`--vm-niceness ${n}$`, 'm'));
  }
  assert.doesNotMatch(systemdUnit(a), /--vm-niceness/);
  for (const bad of ['20', '-1', '2.5', 'low', '']) assert.throws(() => parseServeArgs(['--vm-niceness', bad]), new RegExp(`--vm-niceness '${bad}' is not a whole number of nice steps from 0 to 19`), bad);
  assert.throws(() => parseServeArgs(['--vm-niceness']), /--vm-niceness needs a value/);
});

test('--print-systemd-unit: a user unit that runs this daemon and gives the guests time to power off', () => {
  const a = parseServeArgs(['--dir', '/srv/vms', '--listen', '127.0.0.1:8500', '--shutdown-wait', '40']);
  assert.ok(a !== 'help');
  const unit = systemdUnit(a);
  assert.match(unit, /^\[Service\]$/m);
  assert.match(unit, /^ExecStart=\S+node\S* \S+\/bin\/tsvm\.js serve --dir \/srv\/vms --listen 127\.0\.0\.1:8500 --shutdown-wait 40$/m);
  assert.match(unit, /^TimeoutStopSec=70$/m);
  // SIGTERM to the daemon alone: it stops its VM processes in order (SIGKILL at the timeout reaches all)
  assert.match(unit, /^KillMode=mixed$/m);
  assert.match(unit, /^WantedBy=default\.target$/m);
});

test('--print-systemd-unit: a folder with spaces, quotes, % and $ stays one word of ExecStart, unexpanded', () => {
  const a = parseServeArgs(['--dir', '/srv/my "vms" 100%$HOME']);
  assert.ok(a !== 'help');
  const unit = systemdUnit(a);
  // systemd.service(5): double quotes keep the spaces, \" a quote, %% a percent sign and $$ a dollar sign
  assert.ok(unit.includes(' serve --dir "/srv/my \\"vms\\" 100%%$$HOME" --listen '), unit);
  assert.match(unit, /^Description=tsvm virtual machine daemon \(\/srv\/my "vms" 100%%\$HOME\)$/m);
});

test('the token: 64 hex digits, mode 0600, the same on the next start, narrowed again if widened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-token-'));
  const first = loadOrCreateToken(dir);
  assert.equal(first.created, true);
  assert.match(first.token, /^[0-9a-f]{64}$/);
  assert.equal(statSync(join(dir, 'daemon.token')).mode & 0o777, 0o600);
  chmodSync(join(dir, 'daemon.token'), 0o644);
  const again = loadOrCreateToken(dir);
  assert.deepEqual(again, { token: first.token, created: false });
  assert.equal(statSync(join(dir, 'daemon.token')).mode & 0o777, 0o600);
});

test('VM names: one path component of a small alphabet', () => {
  for (const ok of ['a', 'web-1', 'x.y_z', 'A'.repeat(64)]) assert.equal(checkName(ok), ok);
  for (const bad of ['', '..', '../x', 'a/b', '.hidden', '-x', 'a..b', 'a b', 'A'.repeat(65), 'x\0']) {
    assert.throws(() => checkName(bad), (e: Error) => e instanceof StoreError && e.code === 'bad-name', bad);
  }
});

/**
 * `tsvm serve` options as a user meets them on a terminal: `--print-systemd-unit`
 * prints a unit and exits without starting a daemon, and a `--listen` address
 * beyond loopback gets a warning on standard error before the daemon's URL;
 * a SIGTERM sent as soon as the URL line is out stops the daemon in order.
 * (src/server/serve.test.ts checks the parsing and the unit's lines.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsvmChild } from '../helpers/child.js';

test('tsvm serve --print-systemd-unit: a unit whose ExecStart runs tsvm serve on the directory; exit 0, no daemon', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-unit-'));
  const c = new TsvmChild(['serve', '--print-systemd-unit', '--dir', dir, '--shutdown-wait', '40']);
  assert.equal(await c.exit(60_000), 0, c.tail());
  assert.equal(c.stderr, '', 'nothing on standard error');
  assert.match(c.out, /^\[Unit\]$/m);
  assert.match(c.out, /^\[Service\]$/m);
  assert.match(c.out, new RegExp(`^ExecStart=\\S+node\\S* \\S+/bin/tsvm\\.js serve --dir ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .*--shutdown-wait 40`, 'm'));
  assert.match(c.out, /^KillMode=mixed$/m);
  assert.match(c.out, /^WantedBy=default\.target$/m);
  assert.doesNotMatch(c.out, /open http/, 'no daemon was started');
  assert.ok(!existsSync(join(dir, 'daemon.token')) && !existsSync(join(dir, 'daemon.json')), 'nothing written to the directory');
});

test('tsvm serve --listen 0.0.0.0:0: a warning on standard error that it listens beyond this machine over plain HTTP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-listen-'));
  const d = new TsvmChild(['serve', '--dir', dir, '--listen', '0.0.0.0:0']);
  t.after(() => d.kill());
  await d.waitFor(/open http:\/\/0\.0\.0\.0:\d+\/\?token=[0-9a-f]{64}\n/, 0, 60_000, 'the URL line');
  assert.match(d.stderr, /warning: listening on 0\.0\.0\.0, beyond this machine, over plain HTTP; anyone who sees the token can manage these VMs/);
  // SIGTERM as soon as the URL line is out: the daemon has its handlers by then and stops in order
  // (it printed the line first, and SIGTERM's default action ended it, in most runs on a busy host)
  d.child.kill('SIGTERM');
  assert.equal(await d.exit(60_000), 0, d.tail());
  assert.match(d.stderr, /SIGTERM: powering off 0 VM\(s\).*\n.*daemon stopped\n/);

  // on loopback, no warning
  const quiet = new TsvmChild(['serve', '--dir', dir, '--listen', '127.0.0.1:0']);
  t.after(() => quiet.kill());
  await quiet.waitFor(/open http:\/\/127\.0\.0\.1:\d+\//, 0, 60_000, 'the URL line');
  assert.doesNotMatch(quiet.stderr, /warning/);
  quiet.child.kill('SIGTERM');
  assert.equal(await quiet.exit(60_000), 0, quiet.tail());
  assert.match(quiet.stderr, /daemon stopped\n/);
});

test('tsvm serve without --dir: the per-user data folder ($XDG_DATA_HOME/tsvm/vms, else ~/.local/share/tsvm/vms), found by tsvm list without --dir', async (t) => {
  for (const xdg of [false, true]) {
    const home = mkdtempSync(join(tmpdir(), 'tsvm-home-'));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.XDG_DATA_HOME;
    if (xdg) env.XDG_DATA_HOME = join(home, 'data');
    const expected = xdg ? join(home, 'data', 'tsvm', 'vms') : join(home, '.local', 'share', 'tsvm', 'vms');
    const d = new TsvmChild(['serve', '--listen', '127.0.0.1:0'], { env });
    t.after(() => d.kill());
    await d.waitFor(/open http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}\n/, 0, 60_000, 'the URL line');
    assert.ok(existsSync(join(expected, 'daemon.token')), `the token in ${expected}: ${d.tail()}`);
    const list = new TsvmChild(['list'], { env });
    assert.equal(await list.exit(60_000), 0, list.tail());
    // the daemon's table (without a daemon, tsvm list lists the VM folders of the current directory instead)
    assert.match(list.out, /^NAME\s+STATE\s+MEMORY\s+RSS\/LIMIT/m, `tsvm list reached this daemon: ${list.out}`);
    d.child.kill('SIGTERM');
    assert.equal(await d.exit(60_000), 0, d.tail());
  }
});

/**
 * The per-VM RAM limit: under process isolation the daemon samples each VM
 * process's resident set and kills one that stays above its limit; the VM
 * shows crashed with the reason and follows its restart policy, while a VM
 * within its limit is untouched. Under thread isolation the API says the
 * limit is not enforced. A `tsvm serve` child as a user runs it; no Linux
 * boot: the VMs are bare SeaBIOS (a VM process of one holds 100-odd MiB).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, EventLog } from '../helpers/daemon.js';
import { alive, TsvmChild } from '../helpers/child.js';

interface Info {
  state: string;
  reason: string | null;
  pid: number | null;
  restarts: number;
  memoryBytes: number;
  rssLimitMiB: number;
  rssLimitEnforced: boolean;
}

test('tsvm serve: a VM process above its RSS limit is killed and shows crashed with the reason; a VM within its limit runs on', async (t) => {
  const d = await new Daemon().ready();
  const pids = d.vmPids;
  t.after(() => d.killAll());
  const events = new EventLog(d.socket('/api/events'));
  const info = async (vm: string) => (await d.api('GET', `/api/vms/${vm}`)).json as Info;

  await t.test('bad rssLimitMiB values are refused with 400, nothing changed', async () => {
    for (const bad of [0, 31, 1.5, -64, 'big', true, 2 ** 21]) {
      const r = await d.api('POST', '/api/vms', { name: 'bad', guest: 'firmware', memoryMiB: 16, rssLimitMiB: bad });
      assert.equal(r.status, 400, `rssLimitMiB ${JSON.stringify(bad)}: ${r.text}`);
      assert.match(r.text, /rssLimitMiB must be a whole number of MiB/);
    }
    assert.equal((await d.api('GET', '/api/vms/bad')).status, 404, 'nothing was created');
  });

  await t.test('the default limit is guest RAM + heap limit + overhead, enforced under process isolation', async () => {
    assert.equal((await d.api('POST', '/api/vms', { name: 'bystander', guest: 'firmware', memoryMiB: 16 })).status, 201);
    const b = await info('bystander');
    assert.equal(b.rssLimitEnforced, true);
    assert.equal(b.rssLimitMiB, 16 + 256 + 384);
    assert.equal((await d.api('PATCH', '/api/vms/bystander', { rssLimitMiB: 'x' })).status, 400);
    assert.equal((await info('bystander')).rssLimitMiB, 16 + 256 + 384, 'a refused PATCH changed nothing');
  });

  await t.test('a VM given a limit below what its process needs is killed with the reason, the other VM untouched', async () => {
    // a bare SeaBIOS VM process holds 100-odd MiB (a Node runtime and the emulator): 48 MiB is too little
    assert.equal((await d.api('POST', '/api/vms', { name: 'hog', guest: 'firmware', memoryMiB: 16, rssLimitMiB: 48, restart: 'on-crash' })).status, 201);
    assert.equal((await info('hog')).rssLimitMiB, 48);
    const from = events.events.length;
    assert.equal((await d.api('POST', '/api/vms/bystander/start')).status, 200);
    assert.equal((await d.api('POST', '/api/vms/hog/start')).status, 200);
    await d.orGone(events.waitFor((e) => e.type === 'state' && e.vm === 'bystander' && e.state === 'running', 60_000, 'bystander running', from), 'bystander running');
    const hog = await info('hog');
    if (hog.pid !== null) pids.push(hog.pid);
    const bystander = await info('bystander');
    pids.push(bystander.pid as number);
    const crashed = await d.orGone(events.waitFor((e) => e.type === 'state' && e.vm === 'hog' && e.state === 'crashed', 60_000, 'hog crashed', from), 'hog crashed');
    assert.match(String(crashed.reason), /^over its memory limit: RSS \d+ MiB > 48 MiB$/);
    const rss = Number(/RSS (\d+) MiB/.exec(String(crashed.reason))?.[1]);
    assert.ok(rss > 48, `the RSS named is above the limit: ${String(crashed.reason)}`);
    if (hog.pid !== null) {
      const deadline = Date.now() + 10_000;
      while (alive(hog.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(!alive(hog.pid), 'the process is gone');
    }
    assert.match((await d.api('GET', '/api/vms/hog/log')).text, /state crashed \(over its memory limit: RSS \d+ MiB > 48 MiB\)/);
    // the restart policy applies as to any crash: on-crash starts it again (and it is killed again)
    await d.orGone(events.waitFor((e) => e.type === 'state' && e.vm === 'hog' && e.state === 'starting', 30_000, 'hog restarted', events.events.indexOf(crashed) + 1), 'hog restarted');
    assert.equal((await d.api('PATCH', '/api/vms/hog', { restart: 'never' })).status, 200);
    assert.match((await d.api('GET', '/api/vms/hog/log')).text, /restarting after a crash \(policy on-crash, restart 1\)/);
    // the VM within its limit runs on, in the same process, its guest time advancing
    assert.equal(d.child.exitDescription, null, 'the daemon still runs');
    const b = await info('bystander');
    assert.deepEqual([b.state, b.reason, b.pid], ['running', null, bystander.pid]);
    const guest = async () => (await d.sampledStats('bystander')).guestSeconds as number;
    const g0 = await guest();
    let g = g0;
    for (let i = 0; i < 100 && g <= g0; i++) g = await guest();
    assert.ok(g > g0, "the bystander's guest time still advances");
  });

  await t.test("tsvm list shows each running VM process's RSS of its limit, within 80 columns", async () => {
    // the hog, restarted once, is killed again (its policy is now never): wait until it shows crashed
    for (let i = 0; i < 300 && (await info('hog')).state !== 'crashed'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await info('hog')).state, 'crashed');
    const list = new TsvmChild(['list', '--dir', d.dir]);
    assert.equal(await list.exit(), 0, list.tail());
    assert.match(list.out, /^NAME\s+STATE\s+MEMORY\s+RSS\/LIMIT\s+AUTOSTART\s+RESTART\s+PID\s+REASON$/m);
    const b = await info('bystander');
    const row = new RegExp(`^bystander\\s+running\\s+16M\\s+(\\d+)/656M\\s+no\\s+never\\s+${b.pid}$`, 'm').exec(list.out);
    assert.ok(row, `a row for the running bystander with its RSS of 656 MiB and its pid:\n${list.out}`);
    // the figure the API's stats give (the page's "RSS of LIMIT"), read around the list's
    const rss = Number(row[1]);
    const api = ((await d.sampledStats('bystander')) as { processRssBytes: number }).processRssBytes / 1048576;
    assert.ok(rss > 40 && rss < 656 && Math.abs(rss - api) < 64, `RSS ${rss} MiB in the list, ${api.toFixed(0)} MiB in the stats`);
    // the crashed hog: no process, so no RSS, its limit and its reason, which is too long for the row in
    // 80 columns and goes on the next line
    assert.match(list.out, /^hog\s+crashed\s+16M\s+-\/48M\s+no\s+never\s+-\n  over its memory limit: RSS \d+ MiB > 48 MiB$/m);
    for (const l of list.out.trimEnd().split('\n')) assert.ok(l.length <= 80, `a line within 80 columns: '${l}'`);
    // and the stats of a VM that does not run give no RSS (not the daemon's)
    assert.equal(((await d.api('GET', '/api/vms/hog/stats')).json as { processRssBytes: number }).processRssBytes, 0);
  });

  await t.test('a limit lowered on a running VM applies at once; null brings back the default', async () => {
    const from = events.events.length;
    const before = await info('bystander');
    assert.equal((await d.api('PATCH', '/api/vms/bystander', { rssLimitMiB: 32 })).status, 200);
    const crashed = await d.orGone(events.waitFor((e) => e.type === 'state' && e.vm === 'bystander' && e.state === 'crashed', 60_000, 'bystander crashed', from), 'bystander crashed');
    assert.match(String(crashed.reason), /^over its memory limit: RSS \d+ MiB > 32 MiB$/);
    assert.notEqual(before.pid, null);
    assert.equal((await d.api('PATCH', '/api/vms/bystander', { rssLimitMiB: null })).status, 200);
    assert.equal((await info('bystander')).rssLimitMiB, 16 + 256 + 384, 'null is the default again');
  });
});

test('tsvm serve --isolation thread: the API says the RSS limit is not enforced', async (t) => {
  const d = await new Daemon(['--isolation', 'thread']).ready();
  t.after(() => d.child.kill());
  assert.equal((await d.api('POST', '/api/vms', { name: 'vm', guest: 'firmware', memoryMiB: 16, rssLimitMiB: 48 })).status, 201);
  const i = (await d.api('GET', '/api/vms/vm')).json as Info;
  assert.deepEqual([i.rssLimitMiB, i.rssLimitEnforced], [48, false]);
  // tsvm list: no RSS and no limit of its own for a thread's VM
  const list = new TsvmChild(['list', '--dir', d.dir]);
  assert.equal(await list.exit(), 0, list.tail());
  assert.match(list.out, /^vm\s+stopped\s+16M\s+-\s+no\s+never\s+-$/m);
});

/**
 * The CLI through the daemon, as a user meets it, on one booted default guest:
 * `tsvm start`, `tsvm list`, `tsvm console` (type `uname -m`, see i686; the
 * VM made by the API has the data disk /dev/vda on /data and an address by
 * DHCP, as one from `tsvm create` has; Ctrl-A X detaches and the VM goes on), the screen WebSocket, and SIGTERM:
 * the daemon presses each guest's power button and waits; a guest that ignores it (its acpid killed) is
 * suspended and resumed by the next daemon, one that answers it (busybox acpid runs poweroff) powers off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, EventLog, opened, progressOf } from '../helpers/daemon.js';
import { TsvmChild, PROMPT } from '../helpers/child.js';
import { findDefaultImage } from '../../src/vmm/image.js';

const BOOT_LIMIT_MS = 1_200_000; // a shared, loaded machine can take many minutes

/**
 * A console attached later first gets the recent output replayed, old prompts
 * included: type a marker and wait for its answer and the prompt after it, so
 * that the next command's output is read from there.
 */
async function settle(c: TsvmChild, n: number): Promise<void> {
  await c.waitFor(/attached/, 0, 30_000);
  c.child.stdin.write(`echo settled-$((${n}+1))\n`);
  const marker = `settled-${n + 1}`;
  await c.waitFor((t) => t.includes(marker + '\r\n') || t.includes(marker + '\n'), 0, 60_000, marker);
  await c.waitFor(PROMPT, c.out.lastIndexOf(marker), 60_000, `the prompt after ${marker}`);
}

test('the CLI drives a VM in the daemon: start, list, console, detach, shutdown', async (t) => {
  assert.ok(findDefaultImage(), 'the default guest is not built (test/run.js builds it with tsvm image build)');
  const d = await new Daemon(['--shutdown-wait', '3']).ready();
  t.after(() => d.child.kill());
  const cli = (args: string[]) => new TsvmChild([...args, '--dir', d.dir]);

  await t.test('without a daemon, tsvm console says how to start one', async () => {
    const none = new TsvmChild(['console', 'linux', '--dir', d.dir + '-nothing']);
    assert.equal(await none.exit(), 1);
    assert.match(none.stderr, /no daemon is running for .*; start one with 'tsvm serve/);
  });

  assert.equal((await d.api('POST', '/api/vms', { name: 'linux', guest: 'default', memoryMiB: 128 })).status, 201);
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);

  const start = cli(['start', 'linux']);
  assert.equal(await start.exit(), 0, start.tail());
  assert.match(start.out, /linux: starting/);

  const console1 = cli(['console', 'linux']);
  t.after(() => console1.kill());
  await t.test('tsvm console: the guest boots to its shell; uname -m says i686', async () => {
    await console1.waitFor(/attached to 'linux' \(Ctrl-A X detaches\)/, 0, 30_000);
    await console1.waitFor(PROMPT, 0, BOOT_LIMIT_MS, 'the shell prompt');
    const out = await console1.shell('uname -m');
    assert.match(out, /^i686$/m);
  });

  await t.test('the API-created VM is the one tsvm create makes: /dev/vda on /data, and an address by DHCP', async () => {
    // the boot's own lines, from the guest's rc script and its DHCP client
    assert.match(console1.out, /data disk: \/dev\/vda mounted on \/data \(new file system\)/);
    assert.match(console1.out, /network: eth0 10\.0\.2\.15 via 10\.0\.2\.2, DNS 10\.0\.2\.3/);
    const out = await console1.shell('grep " /data " /proc/mounts; cat /sys/block/vda/size; ls /sys/class/net');
    assert.match(out, /^\/dev\/vda \/data ext2 rw/m);
    assert.match(out, /^2097152$/m, 'a 1 GiB disk is 2097152 sectors');
    assert.match(out, /\beth0\b/);
  });

  await t.test('tsvm list shows it running', async () => {
    const list = cli(['list']);
    assert.equal(await list.exit(), 0);
    assert.match(list.out, /^linux\s+running\s+128M/m);
    // with the pid of the VM's own process, the one the API shows (a PID column)
    assert.match(list.out, /^NAME\s+STATE\s+MEMORY\s+RSS\/LIMIT\s+AUTOSTART\s+RESTART\s+PID\s+REASON$/m);
    const pid = ((await d.api('GET', '/api/vms/linux')).json as { pid: number }).pid;
    // and its process's RSS of the limit the daemon enforces (128 MiB + 256 + 384 by default)
    assert.match(list.out, new RegExp(`^linux\\s+running\\s+128M\\s+\\d+/768M\\s+\\S+\\s+\\S+\\s+${pid}\\b`, 'm'));
  });

  await t.test('Ctrl-A X detaches; the VM goes on', async () => {
    console1.child.stdin.write('\x01x');
    assert.equal(await console1.exit(), 0);
    assert.match(console1.out, /detached from 'linux'; it goes on running/);
    assert.equal(((await d.api('GET', '/api/vms/linux')).json as { state: string }).state, 'running');
    // a second console gets the recent output and a live shell
    const again = cli(['console', 'linux']);
    t.after(() => again.kill());
    await again.waitFor(/i686/, 0, 30_000, 'the earlier output, replayed');
    await settle(again, 300);
    const out = await again.shell('echo again-$((6*7))');
    assert.match(out, /again-42/);
    again.child.stdin.write('\x01x');
    assert.equal(await again.exit(), 0);
  });

  await t.test('snapshots of the running guest: save, change, revert, and the change is gone', async () => {
    const shell = cli(['console', 'linux']);
    t.after(() => shell.kill());
    await settle(shell, 100);
    await shell.shell('echo first > /tmp/f1');
    const saved = await d.api('POST', '/api/vms/linux/snapshots', { name: 'one', description: 'with f1' });
    assert.equal(saved.status, 201, saved.text);
    assert.equal((saved.json as { hasState: boolean }).hasState, true);
    // the save's progress: bytes of the booted guest's RAM encoded, with steps between 0 and 100 %
    const saving = await progressOf(events, 'linux', 'snapshot save one');
    assert.ok(saving.some((p) => p.done > 0 && p.done < p.total), `an intermediate progress event: ${JSON.stringify(saving)}`);
    await shell.shell('echo second > /tmp/f2');
    const reverted = await d.api('POST', '/api/vms/linux/snapshots/one/revert');
    assert.equal(reverted.status, 200, reverted.text);
    const out = await shell.shell('cat /tmp/f1; ls /tmp/f2 2>&1');
    assert.match(out, /^first$/m);
    assert.match(out, /No such file/);
    const tree = (await d.api('GET', '/api/vms/linux/snapshots')).json as { current: string; snapshots: { id: string; name: string }[] };
    assert.deepEqual(tree.snapshots.map((n) => n.name), ['one']);
    assert.equal(tree.current, tree.snapshots[0].id);
    // a guest that does not answer the power button (as a hung one would): its acpid gone
    await shell.shell('killall acpid; echo acpid-$?');
    shell.child.stdin.write('\x01x');
    assert.equal(await shell.exit(), 0);
  });

  await t.test('SIGTERM: the power button, a wait, then a guest that ignores it is suspended to its folder', async () => {
    assert.equal(await d.stop(), 0);
    assert.match(d.child.stderr, /asking 'linux' to power off \(ACPI power button\)/);
    assert.match(d.child.stderr, /'linux' did not power off within 3 s; suspending it/);
    assert.match(d.child.stderr, /'linux' suspended; the next daemon start resumes it/);
    assert.match(d.child.stderr, /daemon stopped/);
  });

  await t.test('the next daemon start resumes it where it was', async () => {
    const d2 = await new Daemon([], d.dir).ready();
    t.after(() => d2.child.kill());
    const cli2 = (args: string[]) => new TsvmChild([...args, '--dir', d2.dir]);
    let v = (await d2.api('GET', '/api/vms/linux')).json as { state: string };
    for (let i = 0; i < 60 && v.state !== 'running'; i++) {
      await new Promise((r) => setTimeout(r, 500));
      v = (await d2.api('GET', '/api/vms/linux')).json as { state: string };
    }
    assert.equal(v.state, 'running');
    const shell = cli2(['console', 'linux']);
    t.after(() => shell.kill());
    await settle(shell, 200);
    const out = await shell.shell('cat /tmp/f1');
    assert.match(out, /^first$/m, 'the guest goes on with its files, without a boot');
    assert.match(d2.child.stderr + (await d2.api('GET', '/api/vms/linux/log')).text, /resumed/);
    // the NIC's counters in the stats (since this run started): two pings of the gateway, both ways
    const ping = await shell.shell('ping -c 2 10.0.2.2 | grep -c "bytes from"');
    assert.match(ping, /^2$/m, ping);
    type Nic = { name: string; rxFrames: number; txFrames: number; rxBytes: number; txBytes: number };
    const counted = (n: Nic | undefined) => !!n && n.txFrames >= 2 && n.rxFrames >= 2 && n.txBytes >= 196 && n.rxBytes >= 196;
    let nics: Nic[] = [];
    // a stats answer may come from the sample before the pings: ask until one is newer, for 30 s at most
    for (let i = 0; i < 60 && !counted(nics[0]); i++) {
      if (i) await new Promise((r) => setTimeout(r, 500));
      nics = ((await d2.sampledStats('linux')) as { nics: Nic[] }).nics;
    }
    assert.equal(nics.length, 1, JSON.stringify(nics));
    assert.equal(nics[0].name, 'nic0');
    assert.ok(counted(nics[0]), `the pings' frames counted: ${JSON.stringify(nics[0])}`);
    // the guest answers its power button again: this daemon's SIGTERM powers it off within the wait
    await shell.shell('acpid -l /var/log/acpid.log; echo acpid-started');
    shell.child.stdin.write('\x01x');
    assert.equal(await shell.exit(), 0);
    const watch = cli2(['console', 'linux']);
    t.after(() => watch.kill());
    await settle(watch, 400);
    assert.equal(await d2.stop(), 0);
    assert.match(d2.child.stderr, /asking 'linux' to power off \(ACPI power button\)/);
    assert.match(d2.child.stderr, /'linux' powered off/);
    assert.doesNotMatch(d2.child.stderr, /did not power off/);
    assert.match(watch.out, /power button pressed: powering off/);
    assert.match(watch.out, /reboot: Power down/);
  });

  await t.test('a guest that powered off stays off at the next daemon start', async () => {
    const d3 = await new Daemon([], d.dir).ready();
    t.after(() => d3.child.kill());
    const v = (await d3.api('GET', '/api/vms/linux')).json as { state: string };
    assert.equal(v.state, 'stopped', 'a guest that powered off is not resumed');
    assert.equal(await d3.stop(), 0);
  });
});

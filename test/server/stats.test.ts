/**
 * Stats and limits through the daemon's API, as a script meets them: the CPU
 * cap (cpuLimit) set on a running VM shows in its info and stats, lowers a
 * spinning guest's instructions per second and its process's host CPU
 * share, and the guest still runs under it; a disk's counters show what the
 * firmware read from it, and a NIC has its entry. Every response
 * is checked against the OpenAPI document. A VM process that cannot answer
 * (stopped with SIGSTOP) still gets its stats answered, from its last sample
 * with that sample's age; one stopped before its first sample gets them
 * answered too, with its state and no figures. The daemon runs with `--vm-niceness 3`, and the
 * VM's process is 3 nice steps below it. No Linux boot: a 64 KiB ROM that
 * spins (jmp $), and bare SeaBIOS looking for a boot disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { niceValues } from '../helpers/child.js';

type Stats = { state: string; sampleAgeMs: number | null; guestSeconds: number; guestInstructionsPerSec: number; hostCpuPercent: number; cpuLimit: number | null; disks: Record<string, number | string>[]; nics: Record<string, number | string>[] };

test('stats: the CPU cap lowers a spinning guest and shows in stats; disk counters count what the guest read', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsvm-stats-'));
  // a ROM whose reset vector is `jmp $`: the CPU spins at full speed for ever
  const rom = new Uint8Array(0x10000);
  rom.set([0xeb, 0xfe], 0xfff0);
  writeFileSync(join(tmp, 'spin.rom'), rom);
  const disk = new Uint8Array(1 << 20);
  writeFileSync(join(tmp, 'disk.img'), disk);
  const base = { version: 1, memoryBytes: 16 * 1048576, vgaBios: null, linux: null, boot: 'c', rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };

  // VM processes 3 nice steps below the daemon, not the default 10
  const d = await new Daemon(['--vm-niceness', '3']).ready();
  t.after(() => d.child.kill());
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  const stats = async (name: string) => {
    if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}): ${d.child.tail()}`);
    const r = await d.api('GET', `/api/vms/${name}/stats`);
    assert.equal(r.status, 200);
    return r.json as Stats;
  };
  /** The medians of three samples of the instruction rate and the host CPU share, each over a fresh sampling interval. */
  const rates = async (name: string) => {
    const rs: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 700));
      const s = await stats(name);
      rs.push(s.guestInstructionsPerSec);
      cpu.push(s.hostCpuPercent);
    }
    const median = (v: number[]) => v.sort((a, b) => a - b)[1];
    return { ips: median(rs), cpu: median(cpu), cpuSamples: cpu };
  };

  await t.test('a bad cpuLimit is refused and nothing is created', async () => {
    for (const bad of [0, 101, 12.5, 'half']) {
      const r = await d.api('POST', '/api/vms', { name: 'bad', machine: { ...base, bios: join(tmp, 'spin.rom'), drives: {} }, cpuLimit: bad });
      assert.equal(r.status, 400, `cpuLimit ${String(bad)}`);
      assert.match((r.json as { error: { message: string } }).error.message, /cpuLimit must be a whole percent of one host core from 1 to 100, or null/);
    }
    assert.equal((await d.api('GET', '/api/vms/bad')).status, 404);
  });

  await t.test('cpuLimit on a running VM: shown in info and stats; fewer instructions per second; the guest still runs', async () => {
    assert.equal((await d.api('POST', '/api/vms', { name: 'spin', machine: { ...base, bios: join(tmp, 'spin.rom'), drives: {} } })).status, 201);
    assert.equal(((await d.api('GET', '/api/vms/spin')).json as { cpuLimit: unknown }).cpuLimit, null);
    assert.equal((await d.api('POST', '/api/vms/spin/start')).status, 200);
    await events.waitFor((e) => e.vm === 'spin' && e.state === 'running', 60_000, 'spin running');
    for (let i = 0; i < 50 && (await stats('spin')).guestInstructionsPerSec === 0; i++) await new Promise((r) => setTimeout(r, 200));
    const { ips: free, cpu: freeCpu } = await rates('spin');
    assert.ok(free > 0, 'the spinning guest executes instructions');
    assert.equal((await stats('spin')).cpuLimit, null);

    const p = await d.api('PATCH', '/api/vms/spin', { cpuLimit: 10 });
    assert.equal(p.status, 200);
    assert.equal((p.json as { cpuLimit: number }).cpuLimit, 10);
    let s = await stats('spin');
    for (let i = 0; i < 50 && s.cpuLimit !== 10; i++) s = await stats('spin');
    assert.equal(s.cpuLimit, 10, 'the running VM applies the cap');
    const { ips: capped, cpu: cappedCpu, cpuSamples } = await rates('spin');
    assert.ok(capped < free / 2, `capped at 10%, the guest runs fewer instructions per second (${capped} against ${free} without the cap)`);
    // the host CPU figure shows the cap too: the VM process's share of a core (every thread of it),
    // within a margin for a noisy host, and below the uncapped share
    assert.ok(cappedCpu < 40, `capped at 10%, the VM process uses under 40% of a core: ${cpuSamples.join(', ')}% (uncapped ${freeCpu}%)`);
    assert.ok(freeCpu > cappedCpu, `the uncapped VM used more of a core (${freeCpu}%) than the capped one (${cappedCpu}%)`);
    const g0 = (await stats('spin')).guestSeconds;
    let g1 = g0;
    for (let i = 0; i < 20 && g1 <= g0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      g1 = (await stats('spin')).guestSeconds;
    }
    assert.ok(g1 > g0, 'guest time still advances under the cap');
    assert.match((await d.api('GET', '/api/vms/spin/log')).text, /settings: cpuLimit 10/);

    assert.equal(((await d.api('PATCH', '/api/vms/spin', { cpuLimit: null })).json as { cpuLimit: unknown }).cpuLimit, null);
    s = await stats('spin');
    for (let i = 0; i < 50 && s.cpuLimit !== null; i++) s = await stats('spin');
    assert.equal(s.cpuLimit, null, 'the cap is lifted');
    assert.equal((await d.api('POST', '/api/vms/spin/stop')).status, 200);
  });

  await t.test('a cap set before the start applies from the start', async () => {
    assert.equal((await d.api('PATCH', '/api/vms/spin', { cpuLimit: 25 })).status, 200);
    await events.waitFor((e) => e.vm === 'spin' && e.state === 'stopped', 30_000, 'spin stopped');
    assert.equal((await stats('spin')).cpuLimit, 25, 'a stopped VM shows its setting');
    assert.equal((await d.api('POST', '/api/vms/spin/start')).status, 200);
    let s = await stats('spin');
    for (let i = 0; i < 100 && s.state !== 'running'; i++) s = await stats('spin');
    assert.equal(s.cpuLimit, 25);
    await d.sampledStats('spin');
    const { cpu, cpuSamples } = await rates('spin');
    assert.ok(cpu > 0 && cpu < 60, `capped at 25% from the start, the VM process uses under 60% of a core: ${cpuSamples.join(', ')}%`);
    assert.equal((await d.api('POST', '/api/vms/spin/stop')).status, 200);
  });

  await t.test('a VM process too busy to answer (here stopped with SIGSTOP): stats come at once from its last sample, with the age; fresh again once it runs', async () => {
    assert.equal((await d.api('PATCH', '/api/vms/spin', { cpuLimit: null })).status, 200);
    let s = await stats('spin');
    for (let i = 0; i < 100 && s.state !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await stats('spin');
    }
    assert.equal((await d.api('POST', '/api/vms/spin/start')).status, 200);
    s = await stats('spin');
    for (let i = 0; i < 100 && (s.state !== 'running' || s.guestSeconds === 0); i++) s = await stats('spin');
    assert.equal(s.state, 'running');
    assert.equal(s.sampleAgeMs, 0, 'a VM process that answers gives fresh figures');
    const pid = ((await d.api('GET', '/api/vms/spin')).json as { pid: number | null }).pid;
    assert.ok(typeof pid === 'number', 'the running VM shows its pid');
    const daemonNice = niceValues(d.child.child.pid as number)?.process as number;
    const nice = niceValues(pid);
    assert.equal(nice?.process, Math.min(19, daemonNice + 3), `--vm-niceness 3: the VM process 3 nice steps below the daemon's ${daemonNice}`);
    assert.deepEqual([...(nice?.threads ?? [])].filter(([, v]) => v !== Math.min(19, daemonNice + 3)), [], 'every thread of it');
    process.kill(pid, 'SIGSTOP');
    try {
      const late = await stats('spin');
      assert.equal(late.state, 'running');
      assert.ok((late.sampleAgeMs ?? 0) > 0, `the figures of a process that cannot answer say how old they are: ${JSON.stringify(late)}`);
      assert.ok(late.guestSeconds > 0 && late.guestSeconds >= s.guestSeconds, `the last sample, not zeros: ${late.guestSeconds} s of guest time`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    let after = await stats('spin');
    for (let i = 0; i < 50 && after.sampleAgeMs !== 0; i++) after = await stats('spin');
    assert.equal(after.sampleAgeMs, 0, 'fresh figures again once the process runs');
    assert.ok(after.guestSeconds > s.guestSeconds, 'and the guest ran on');
    assert.equal((await d.api('POST', '/api/vms/spin/stop')).status, 200);
  });

  await t.test('a VM process stopped (SIGSTOP) before its first sample: stats answer anyway, with the state and no figures (sampleAgeMs null); figures once it runs', async () => {
    let s = await stats('spin');
    for (let i = 0; i < 100 && s.state !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await stats('spin');
    }
    assert.equal(s.state, 'stopped');
    assert.equal(s.sampleAgeMs, null, 'a VM that does not run has no sample');
    const started = await d.api('POST', '/api/vms/spin/start');
    assert.equal(started.status, 200);
    const pid = (started.json as { pid: number | null }).pid;
    assert.ok(typeof pid === 'number', `the start answers with the new process's pid: ${started.text}`);
    // stopped at once: the process has not even loaded the emulator, let alone answered a stats question
    process.kill(pid, 'SIGSTOP');
    try {
      // the signal is taken when the process next runs: wait until /proc shows it stopped
      const stat = () => readFileSync(`/proc/${pid}/stat`, 'latin1');
      for (let i = 0; i < 250 && !/^\d+ \(.*\) T /.test(stat()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(stat(), /^\d+ \(.*\) T /, 'the VM process is stopped');
      // the daemon waits a second at most; a request still unanswered after 30 s hangs
      for (let i = 0; i < 2; i++) {
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('GET /api/vms/spin/stats did not answer within 30 s while the VM process was stopped before its first sample')), 30_000)));
        const early = await Promise.race([stats('spin'), hang]).finally(() => clearTimeout(timer));
        assert.equal(early.state, 'starting', `the VM's state: ${JSON.stringify(early)}`);
        assert.equal(early.sampleAgeMs, null, `no sample yet: ${JSON.stringify(early)}`);
        assert.deepEqual([early.guestSeconds, early.guestInstructionsPerSec, early.disks], [0, 0, []], 'no figures, rather than figures made up');
      }
      assert.equal(((await d.api('GET', '/api/vms/spin')).json as { pid: number | null }).pid, pid, 'the same process, still there');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    let after = await stats('spin');
    for (let i = 0; i < 100 && (after.sampleAgeMs !== 0 || after.state !== 'running' || after.guestSeconds === 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await stats('spin');
    }
    assert.deepEqual([after.state, after.sampleAgeMs], ['running', 0], `fresh figures once the process runs: ${JSON.stringify(after)}`);
    assert.ok(after.guestSeconds > 0, 'and the guest runs');
    assert.equal((await d.api('POST', '/api/vms/spin/stop')).status, 200);
  });

  await t.test("disk counters: SeaBIOS reads the boot disk's first sector", async () => {
    const machine = { ...base, bios: 'seabios', vgaBios: 'seabios', drives: { hda: { file: join(tmp, 'disk.img'), format: 'raw', mode: 'rw' } } };
    assert.equal((await d.api('POST', '/api/vms', { name: 'disk', machine })).status, 201);
    assert.equal((await d.api('POST', '/api/vms/disk/start')).status, 200);
    let s = await stats('disk');
    for (let i = 0; i < 300 && !(Number(s.disks[0]?.readOps) > 0); i++) {
      await new Promise((r) => setTimeout(r, 200));
      s = await stats('disk');
    }
    assert.equal(s.disks.length, 1);
    const hda = s.disks[0];
    assert.equal(hda.name, 'hda');
    assert.ok(Number(hda.readOps) > 0 && Number(hda.readBytes) >= 512, `the boot sector was read: ${JSON.stringify(hda)}`);
    assert.equal(hda.writtenBytes, 0, 'the firmware writes nothing');
    assert.deepEqual(s.nics, [], 'a VM without a NIC has no NIC counters');
    assert.equal((await d.api('POST', '/api/vms/disk/stop')).status, 200);
  });

  await t.test('NIC counters: a VM with a NIC has an entry for it, counting from zero', async () => {
    // the spinning ROM with an e1000 on the user-mode network: the guest never drives the card, so
    // nothing is sent; what is received is whatever the network offers unasked (nothing here)
    const machine = { ...base, bios: join(tmp, 'spin.rom'), drives: {}, nics: [{ model: 'e1000', net: 'user' }] };
    assert.equal((await d.api('POST', '/api/vms', { name: 'nic', machine })).status, 201);
    assert.equal((await d.api('POST', '/api/vms/nic/start')).status, 200);
    // the client has checked the entry's shape against the document (NicStats: the counters, whole numbers >= 0)
    const s = (await d.sampledStats('nic')) as unknown as Stats;
    assert.equal(s.nics.length, 1, `one NIC, one entry: ${JSON.stringify(s.nics)}`);
    const nic = s.nics[0];
    assert.equal(nic.name, 'nic0');
    for (const k of ['rxBytes', 'rxFrames', 'txBytes', 'txFrames']) assert.ok(typeof nic[k] === 'number' && (nic[k] as number) >= 0, `${k}: ${JSON.stringify(nic)}`);
    assert.deepEqual([nic.txBytes, nic.txFrames], [0, 0], 'a guest that never drives its card has sent nothing');
    assert.deepEqual(s.disks, []);
    assert.equal((await d.api('POST', '/api/vms/nic/stop')).status, 200);
  });
  assert.equal(await d.stop(), 0);
});

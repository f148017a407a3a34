/**
 * The daemon under load: `tsvm serve` with as many default-guest VMs as the
 * host's free RAM holds (or --vms N), each booted to its shell, while a
 * client measures the API's answer times. The VMs boot one after another
 * (this machine's rule: one Linux boot at a time), so the phases are: no VM
 * running (the baseline), during each boot (the others idle at their
 * shells), and all of them idle at their shells. Per phase: the latency of
 * GET /api/vms and GET /api/vms/NAME/stats (median, 95th percentile, worst),
 * and the daemon's resident set. Boot times are wall time from the start
 * request to the shell prompt on the console WebSocket. At the end, each
 * VM's figures, with the resident set of the process it runs in (its own
 * under --isolation process, the default; the daemon's under thread).
 *
 * Usage: node dist/bench/daemon-load.js [--vms N] [--memory MiB] [--idle SECONDS] [--isolation process|thread]
 */
import { spawn } from 'node:child_process';
import { freemem, totalmem, cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { findDefaultImage } from '../src/vmm/image.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const PROMPT = /(^|\n)tsvm:[^\n]*# /;
const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const memoryMiB = opt('memory', 64);
/**
 * What one booted VM costs the host besides its guest RAM: its runtime, heap, compiled code and
 * buffers (measured: a default guest of 64 MiB at its shell, 435-440 MiB of RSS; rounded up).
 */
const OVERHEAD_MIB = 400;
/** Kept free for the daemon, the client and everyone else on the machine. */
const RESERVE_MIB = 1024;
const fits = Math.max(1, Math.floor((freemem() / 1048576 - RESERVE_MIB) / (memoryMiB + OVERHEAD_MIB)));
const count = opt('vms', Math.min(fits, 4));
const idleS = opt('idle', 30);
const isolation = args.includes('--isolation') ? args[args.indexOf('--isolation') + 1] : 'process';
if (!findDefaultImage()) {
  console.error('daemon-load bench: the default guest image is missing; build it with `node bin/tsvm.js image build`');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'tsvm-load-'));
const daemon = spawn(process.execPath, [join(ROOT, 'bin/tsvm.js'), 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--isolation', isolation], { stdio: ['ignore', 'pipe', 'pipe'] });
let daemonOut = '';
daemon.stdout.on('data', (b: Buffer) => (daemonOut += b.toString()));
daemon.stderr.on('data', () => {}); // its request log
const stopDaemon = () => {
  daemon.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', stopDaemon);
daemon.on('exit', (code, sig) => {
  if (!finished) {
    console.error(`daemon-load bench: the daemon exited (${sig ?? code}) before the end`);
    process.exit(1);
  }
});
let finished = false;

for (let i = 0; !/open (http:\S+)\/\?token=/.test(daemonOut); i++) {
  if (i > 300) throw new Error('the daemon did not print its URL');
  await new Promise((r) => setTimeout(r, 100));
}
const m = /open (http:\S+)\/\?token=([0-9a-f]{64})/.exec(daemonOut) as RegExpExecArray;
const [url, token] = [m[1], m[2]];
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown>; ms: number }> => {
  const t0 = performance.now();
  const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = (await r.json()) as Record<string, unknown>;
  return { status: r.status, json, ms: performance.now() - t0 };
};

/** The daemon process's resident set (its VM processes not included), bytes. */
const daemonRss = (): number => {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${daemon.pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : NaN;
};

// the sampler: every 100 ms one list and one stats request, recorded under the current phase
type Sample = { list: number[]; stats: number[]; rss: number[]; load: number[] };
const phases = new Map<string, Sample>();
let phase = 'no VM running (baseline)';
let sampling = true;
const names = Array.from({ length: count }, (_, i) => `load${i + 1}`);
const sampler = (async () => {
  let k = 0;
  while (sampling) {
    const p = phases.get(phase) ?? { list: [], stats: [], rss: [], load: [] };
    phases.set(phase, p);
    const l = await api('GET', '/api/vms');
    p.list.push(l.ms);
    const s = await api('GET', `/api/vms/${names[k++ % names.length]}/stats`);
    if (s.status === 200) p.stats.push(s.ms);
    p.rss.push(daemonRss());
    p.load.push(loadavg()[0]);
    await new Promise((r) => setTimeout(r, 100));
  }
})();

for (const name of names) {
  const r = await api('POST', '/api/vms', { name, guest: 'default', memoryMiB });
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${JSON.stringify(r.json)}`);
}
await new Promise((r) => setTimeout(r, 10_000)); // the baseline

const boots: number[] = [];
for (const [i, name] of names.entries()) {
  phase = `booting VM ${i + 1} of ${count} (${i} idle at the shell)`;
  let out = '';
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/vms/${name}/console?token=${token}`);
  ws.on('message', (b: Buffer) => (out += b.toString('latin1')));
  await new Promise((r) => ws.once('open', r));
  const t0 = performance.now();
  const st = await api('POST', `/api/vms/${name}/start`);
  if (st.status !== 200) throw new Error(`start ${name}: ${st.status} ${JSON.stringify(st.json)}`);
  while (!PROMPT.test(out)) {
    if (performance.now() - t0 > 900_000) throw new Error(`${name} did not reach its prompt in 15 minutes; its console:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  boots.push((performance.now() - t0) / 1000);
  ws.close();
}
phase = `all ${count} VMs idle at the shell`;
await new Promise((r) => setTimeout(r, idleS * 1000));
sampling = false;
await sampler;
const perVm = await Promise.all(names.map((n) => api('GET', `/api/vms/${n}/stats`)));

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const f = (x: number) => x.toFixed(1).padStart(7);
console.log(`daemon load: ${count} default-guest VMs of ${memoryMiB} MiB (free RAM would fit ${fits}), booted one at a time, isolation ${isolation}`);
console.log(`host: ${cpus().length} cores, ${(totalmem() / 1073741824).toFixed(1)} GiB RAM, load ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
console.log(`boot to the shell prompt (s): ${boots.map((b) => b.toFixed(1)).join(', ')}`);
console.log('');
console.log('phase                                              requests  list p50   p95   max | stats p50   p95   max (ms) | daemon RSS MiB | load (1 min)');
for (const [name, p] of phases) {
  const rss = p.rss.length ? Math.max(...p.rss) / 1048576 : NaN;
  console.log(`${name.padEnd(50)} ${String(p.list.length + p.stats.length).padStart(8)} ${f(q(p.list, 0.5))}${f(q(p.list, 0.95))}${f(Math.max(...p.list))} | ${f(q(p.stats, 0.5))}${f(q(p.stats, 0.95))}${f(p.stats.length ? Math.max(...p.stats) : NaN)}      | ${rss.toFixed(0).padStart(14)} | ${Math.min(...p.load).toFixed(1)}-${Math.max(...p.load).toFixed(1)}`);
}
console.log('');
for (const r of perVm) console.log(`${String(r.json.name)}: ${String(r.json.state)}, guest ${Number(r.json.guestSeconds).toFixed(0)} s, ${(Number(r.json.guestInstructionsPerSec) / 1e6).toFixed(1)} M instr/s idle, host CPU ${String(r.json.hostCpuPercent)} % (${Number(r.json.hostCpuSeconds).toFixed(1)} s in all), VM memory ${(Number(r.json.vmMemoryBytes) / 1048576).toFixed(0)} MiB, RSS of its process ${(Number(r.json.processRssBytes) / 1048576).toFixed(0)} MiB`);
const vmRss = perVm.reduce((n, r) => n + Number(r.json.processRssBytes), 0) / 1048576;
if (isolation === 'process') console.log(`all VM processes together: ${vmRss.toFixed(0)} MiB of RSS, the daemon ${(daemonRss() / 1048576).toFixed(0)} MiB`);
finished = true;
process.exit(0);

/**
 * Networking speed of the default guest on the user-mode network, tsvm next
 * to QEMU's user networking (qemu-system-i386 -accel tcg -nic user,model=e1000,
 * same kernel and initrd) in one run, on this machine:
 *  - download: the guest wgets 4 MiB from an HTTP server this process runs on
 *    127.0.0.1 (reached as 10.0.2.2), host wall time from the command to the prompt;
 *  - upload: the host fetches 4 MiB from busybox httpd in the guest through a
 *    hostfwd port (the guest's transmit path: TSO on the e1000);
 *  - latency: 20 small HTTP requests from the guest, the mean per request.
 * Servers are only ever on 127.0.0.1.
 * Usage: node dist/bench/net.js [--only tsvm,qemu] [--model e1000|virtio-net-pci] [--mib N] [--prof DIR]
 * (--mib: MiB per transfer, default 4; --prof writes a V8 CPU profile of the tsvm process into DIR).
 * Each direction runs twice and both are printed: the first transfer also pays
 * for compiling the guest's network paths (a JIT's warm-up), the second is the
 * steady state; the table's MiB/s are the second, warm run.
 * Each row also gives the emulator process's CPU seconds per MiB moved (from
 * /proc, user+system): steadier than wall time on a shared host, and next to
 * the MiB/s it tells a CPU-bound guest (CPU s/MiB x MiB/s near 1) from one
 * that waits.
 */
import type { AddressInfo } from 'node:net';
import { createServer as createHttp, get } from 'node:http';
import { loadavg, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDefaultImage } from '../src/vmm/image.js';
import { freePort, QEMU, qemuGuestArgs, qemuVersion } from './lib/qemu.js';
import { Session } from './lib/session.js';
import { strayWarning } from './lib/strays.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const PROMPT = /(^|\n)[^\n]*# $/;
function argOf(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const MIB = Number(argOf('--mib') ?? 4);
if (!Number.isInteger(MIB) || MIB < 1 || MIB > 64) throw new Error(`--mib ${argOf('--mib')}: a whole number of MiB from 1 to 64`);
const BIG = Buffer.alloc(MIB * 1048576, 0x5a);

function progress(msg: string): void {
  process.stderr.write(`[bench:net ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function fetchLen(port: number, path: string): Promise<number> {
  return new Promise((res, rej) => {
    get({ host: '127.0.0.1', port, path }, (r) => {
      let n = 0;
      r.on('data', (d: Buffer) => (n += d.length));
      r.on('end', () => res(n));
    }).on('error', rej);
  });
}

interface Row {
  label: string;
  down?: number;
  up?: number;
  lat?: number;
  /** MiB/s of the first (cold) transfer each way. */
  downCold?: number;
  upCold?: number;
  /** Emulator CPU seconds per MiB moved, download and upload (warm runs). */
  downCpu?: number;
  upCpu?: number;
  /** Emulator CPU ms per small request. */
  latCpu?: number;
  error?: string;
}

async function runTarget(label: string, cmd: string, args: string[], httpPort: number, fwdPort: number, gentle = false): Promise<Row> {
  const row: Row = { label };
  progress(`${label}: starting`);
  const s = new Session(cmd, args);
  try {
    await s.waitFor(PROMPT, 0, 1_800_000, 'the prompt');
    // QEMU's guest has no init-time network here unless the image brings it up: it does (udhcpc in /etc/rc)
    await s.cmd(`ifconfig eth0 | grep 'inet addr' || udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 10 -T 1`, PROMPT);
    await s.cmd(`wget -q -O /dev/null http://10.0.2.2:${httpPort}/small`, PROMPT);
    let c0 = 0;
    for (const pass of ['cold', 'warm']) {
      c0 = s.cpuSeconds();
      const d = await s.cmd(`wget -q -O /dev/null http://10.0.2.2:${httpPort}/big && echo done`, PROMPT);
      if (!/done/.test(d.text)) throw new Error(`download failed: ${d.text.slice(-300)}`);
      if (pass === 'cold') row.downCold = MIB / d.secs;
      else {
        row.downCpu = (s.cpuSeconds() - c0) / MIB;
        row.down = MIB / d.secs;
      }
      progress(`${label}: download ${MIB} MiB in ${d.secs.toFixed(2)} s (${pass})`);
    }
    // diagnostics: the virtio features the driver accepted (bit string) and the guest's TCP retransmissions so far
    const diag = await s.cmd(`cat /sys/class/net/eth0/device/features 2>/dev/null; awk '/^Tcp:/{print "in", $11, "out", $12, "retrans", $13}' /proc/net/snmp | tail -1`, PROMPT);
    const lines = diag.text.replace(/\r/g, '').split('\n');
    progress(`${label}: guest: virtio features ${lines.find((x) => /^[01]{32,}$/.test(x)) ?? '-'}; TCP segments ${lines.find((x) => /^in \d+/.test(x)) ?? '-'}`);
    c0 = s.cpuSeconds();
    const l = await s.cmd(`i=0; while [ $i -lt 20 ]; do wget -q -O /dev/null http://10.0.2.2:${httpPort}/small; i=$((i+1)); done; echo done`, PROMPT);
    row.lat = (l.secs / 20) * 1000;
    row.latCpu = ((s.cpuSeconds() - c0) / 20) * 1000;
    // the file lives in the guest's RAM (tmpfs): a 128 MiB guest cannot hold 64 MiB of it
    const made = await s.cmd(`mkdir -p /tmp/w && dd if=/dev/zero of=/tmp/w/big bs=1048576 count=${MIB} 2>/dev/null; wc -c < /tmp/w/big; httpd -p 8080 -h /tmp/w; echo ok`, PROMPT);
    const size = Number(/^(\d+)\s*$/m.exec(made.text)?.[1] ?? NaN);
    if (size !== MIB * 1048576) throw new Error(`upload: the guest wrote only ${size} of ${MIB * 1048576} bytes of the file it serves (its /tmp is in its RAM); use a smaller --mib`);
    for (const pass of ['cold', 'warm']) {
      c0 = s.cpuSeconds();
      const t0 = performance.now();
      const n = await fetchLen(fwdPort, '/big');
      const secs = (performance.now() - t0) / 1000;
      if (n !== MIB * 1048576) throw new Error(`upload: got ${n} bytes`);
      if (pass === 'cold') row.upCold = MIB / secs;
      else {
        row.upCpu = (s.cpuSeconds() - c0) / MIB;
        row.up = MIB / secs;
      }
      progress(`${label}: upload ${MIB} MiB in ${secs.toFixed(2)} s (${pass})`);
    }
    progress(`${label}: latency ${row.lat.toFixed(1)} ms`);
  } catch (e) {
    row.error = (e as Error).message.slice(0, 300);
    progress(`${label}: FAILED ${row.error}`);
  } finally {
    if (gentle && s.exitStatus === undefined) {
      // a profiled run must exit on its own to write its profile: power the guest off
      s.child.stdin.write('poweroff -f\n');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 60_000);
        s.child.on('close', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    s.child.kill('SIGKILL');
  }
  return row;
}

async function main(): Promise<void> {
  const only = argOf('--only') ? new Set((argOf('--only') as string).split(',')) : null;
  const model = argOf('--model') ?? 'e1000';
  if (model !== 'e1000' && model !== 'virtio-net-pci') throw new Error(`--model ${model}: e1000 or virtio-net-pci`);
  const prof = argOf('--prof');
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', resolve(prof)] : [];
  const img = findDefaultImage();
  if (!img) throw new Error('the default guest image is missing: run `node bin/tsvm.js image build`');
  const http = createHttp((rq, res) => res.end(rq.url === '/big' ? BIG : 'ok\n'));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const httpPort = (http.address() as AddressInfo).port;
  const rows: Row[] = [];
  const load0 = loadavg()[0];
  const strays = strayWarning();
  if (strays) progress(strays);
  if (!only || only.has('tsvm')) {
    const fwd = await freePort();
    rows.push(await runTarget(`tsvm (${model}, user net)`, process.execPath, [...nodeArgs, TSVM, 'run', '-timeout', '3000', '-nic', `user,model=${model},hostfwd=tcp:127.0.0.1:${fwd}-:8080`], httpPort, fwd, !!prof));
  }
  if (!only || only.has('qemu')) {
    const fwd = await freePort();
    if (!qemuVersion()) rows.push({ label: 'QEMU TCG', error: `${QEMU} not installed` });
    else rows.push(await runTarget(`QEMU TCG (${model}, user net)`, QEMU, qemuGuestArgs(img, 128, ['-nic', `user,model=${model},hostfwd=tcp:127.0.0.1:${fwd}-:8080`]), httpPort, fwd));
  }
  http.close();
  const f = (x?: number, d = 2) => (x === undefined ? '-' : x.toFixed(d));
  const out = [
    `bench/net: ${MIB} MiB each way over the user-mode network; baseline QEMU TCG user networking, same guest`,
    `host: ${cpus().length} CPUs; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end${strays ? `\n${strays}` : ''}`,
    '',
    '| target | download MiB/s (cold) | upload MiB/s (cold) | HTTP request ms | CPU s/MiB down, up | CPU ms/request | note |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.label} | ${f(r.down)} (${f(r.downCold)}) | ${f(r.up)} (${f(r.upCold)}) | ${f(r.lat, 1)} | ${f(r.downCpu)}, ${f(r.upCpu)} | ${f(r.latCpu, 1)} | ${r.error ?? ''} |`),
  ];
  const q = rows.find((r) => r.label.startsWith('QEMU'));
  const t = rows.find((r) => r.label.startsWith('tsvm'));
  if (q?.down && t?.down) out.push('', `tsvm/QEMU: download ${(t.down / q.down).toFixed(2)}x, upload ${t.up && q.up ? (t.up / q.up).toFixed(2) : '-'}x, latency ${t.lat && q.lat ? (t.lat / q.lat).toFixed(2) : '-'}x`);
  console.log(out.join('\n'));
}

main().catch((e) => {
  console.error(`bench:net: ${(e as Error).message}`);
  process.exit(1);
});

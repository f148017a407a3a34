/**
 * Two default guests on a private network, VM to VM, tsvm beside QEMU:
 *  - tsvm, as a user sets it up: `tsvm switch -listen unix:PATH -dhcp
 *    10.0.3.0/24` and two `tsvm run -nic switch,path=PATH` processes (the
 *    default NIC, virtio-net, unless --model); addresses by DHCP;
 *  - QEMU TCG: two qemu-system-i386 processes booting the same guest (the
 *    image's kernel, initramfs and command line, 128 MiB, bench/lib/qemu.ts),
 *    each with the same NIC model on a `-netdev socket` joined point to point
 *    over TCP on 127.0.0.1 (A listens, B connects; no switch process between
 *    them, so QEMU's path is one hop shorter); no DHCP, so the guests' boot
 *    DHCP gives up and the bench types static addresses (10.0.3.10, .11).
 * Every process runs at niceness 10. Measured between the guests, the same on both:
 *  - ping: busybox `ping -c 20` from A to B, min/avg/max round trip;
 *  - TCP: A sends N MiB of zeros with busybox nc to B's `nc -l`, twice (cold,
 *    then warm); host wall seconds from A's command until B holds every byte,
 *    MiB/s;
 *  - the guests' TCP counters over each transfer (from /proc/net/snmp and
 *    /proc/net/netstat): the sender's retransmitted segments, timeouts and
 *    loss probes, the receiver's out-of-order segments;
 *  - tsvm only, where frames were dropped: each VM's `info network`
 *    (monitor), which names the backend's and the NIC's drops.
 * Nothing leaves the machine: tsvm's network is a UNIX socket in a temporary
 * folder, QEMU's a TCP connection on 127.0.0.1.
 * Usage: node dist/bench/net-pair.js [--only tsvm,qemu] [--mib N] [--model virtio-net-pci|e1000|ne2k_pci] [--pings N] [--dump DIR]
 * (--dump: each tsvm VM writes a pcap of its NIC's traffic into DIR, for tcpdump.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDefaultImage } from '../src/vmm/image.js';
import { freePort, QEMU, qemuGuestArgs, qemuVersion } from './lib/qemu.js';
import { Session } from './lib/session.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const PROMPT = /(^|\n)tsvm:[^\n]*# $/;
function argOf(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const MIB = Number(argOf('--mib') ?? 4);
const MODEL = argOf('--model') ?? 'virtio-net-pci';
const PINGS = Number(argOf('--pings') ?? 20);
const DUMP = argOf('--dump');
const ONLY = (argOf('--only') ?? 'tsvm,qemu').split(',');
for (const t of ONLY) if (t !== 'tsvm' && t !== 'qemu') throw new Error(`--only ${argOf('--only')}: tsvm and/or qemu, comma-separated`);
const MAC_A = '52:54:00:00:03:0a';
const MAC_B = '52:54:00:00:03:0b';

function progress(msg: string): void {
  process.stderr.write(`[bench:net-pair ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const tsvm = (args: string[]) => new Session(process.execPath, [TSVM, ...args], { nice: 10 });
/** A shell command in a guest: what it printed before the prompt. */
const sh = async (s: Session, c: string, limitMs?: number): Promise<string> => (await s.cmd(c, PROMPT, limitMs)).text;

/** The guest's TCP counters: Tcp from /proc/net/snmp and TcpExt from /proc/net/netstat, by name. */
async function tcpCounters(s: Session): Promise<Map<string, number>> {
  const t = await sh(s, `grep -E '^(Tcp|TcpExt):' /proc/net/snmp /proc/net/netstat | sed 's/^[^:]*://'`);
  const lines = t.split('\n').filter((l) => /^(Tcp|TcpExt): /.test(l));
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/).slice(1);
    const vals = lines[i + 1].split(/\s+/).slice(1);
    names.forEach((n, k) => m.set(n, Number(vals[k])));
  }
  return m;
}

function diff(a: Map<string, number>, b: Map<string, number>, k: string): number {
  return (b.get(k) ?? 0) - (a.get(k) ?? 0);
}

interface Transfer {
  pass: 'cold' | 'warm';
  secs: number;
  retrans: number;
  out: number;
  timeouts: number;
  probes: number;
  fast: number;
  ofo: number;
}
interface Result {
  label: string;
  /** Busybox's round trips as it printed them (ms). */
  ping?: { got: number; min: string; avg: string; max: string };
  runs: Transfer[];
  /** tsvm: the lines of each VM's `info network` that count frames. */
  info: string[];
  error?: string;
}

/** Ping B from A, then the cold and warm transfers A -> B: the same on both emulators. */
async function measure(label: string, a: Session, b: Session, ipB: string, res: Result): Promise<void> {
  progress(`${label}: up; pinging B (${ipB}) from A ${PINGS} times`);
  await sh(a, `ping -c 2 ${ipB} >/dev/null`); // ARP, and the guests' first run of the path
  const p = await sh(a, `ping -c ${PINGS} ${ipB} | tail -2`);
  const pm = /(\d+) packets received.*\n.*= ([\d.]+)\/([\d.]+)\/([\d.]+) ms/s.exec(p);
  if (pm) res.ping = { got: Number(pm[1]), min: pm[2], avg: pm[3], max: pm[4] };
  progress(`${label}: ping: ${res.ping ? `${res.ping.got}/${PINGS}, min/avg/max ${res.ping.min}/${res.ping.avg}/${res.ping.max} ms` : p}`);

  const size = MIB * 1048576;
  for (const pass of ['cold', 'warm'] as const) {
    // nc's stdin stays open (an empty pipe): with /dev/null it would send FIN at once, and A's nc quits on it
    await sh(b, `rm -f /tmp/got; sleep 3600 | nc -l -p 5000 > /tmp/got & sleep 1`);
    const ca = await tcpCounters(a);
    const cb = await tcpCounters(b);
    const wait = sh(b, `i=0; while [ $(wc -c < /tmp/got) -lt ${size} ] && [ $i -lt 3000 ]; do usleep 100000; i=$((i+1)); done; wc -c < /tmp/got`, 900_000);
    const t0 = performance.now();
    await sh(a, `dd if=/dev/zero bs=65536 count=${MIB * 16} 2>/dev/null | nc ${ipB} 5000 &`);
    const got = await wait;
    const secs = (performance.now() - t0) / 1000;
    if (!new RegExp(`^${size}$`, 'm').test(got)) throw new Error(`B received ${got.trim()} bytes, not ${size}`);
    const ca2 = await tcpCounters(a);
    const cb2 = await tcpCounters(b);
    await sh(a, 'killall nc 2>/dev/null; true');
    await sh(b, 'killall nc sleep 2>/dev/null; true');
    const r: Transfer = {
      pass,
      secs,
      retrans: diff(ca, ca2, 'RetransSegs'),
      out: diff(ca, ca2, 'OutSegs'),
      timeouts: diff(ca, ca2, 'TCPTimeouts'),
      probes: diff(ca, ca2, 'TCPLossProbes'),
      fast: diff(ca, ca2, 'TCPFastRetrans'),
      ofo: diff(cb, cb2, 'TCPOFOQueue'),
    };
    const rcvDrop = diff(cb, cb2, 'TCPRcvQDrop') + diff(cb, cb2, 'TCPBacklogDrop') + diff(cb, cb2, 'PruneCalled');
    const rcvDetail = ['TCPRcvQDrop', 'TCPBacklogDrop', 'PruneCalled', 'RcvPruned', 'TCPRcvCollapsed', 'TCPZeroWindowDrop', 'TCPWantZeroWindowAdv', 'TCPSpuriousRTOs', 'TCPDSACKRecv'].map((k) => `${k} ${k === 'TCPSpuriousRTOs' || k === 'TCPDSACKRecv' ? diff(ca, ca2, k) : diff(cb, cb2, k)}`).join(', ');
    progress(`${label}: ${pass}: ${MIB} MiB in ${secs.toFixed(2)} s; A retransmitted ${r.retrans} of ${r.out} segments (timeouts ${r.timeouts}, loss probes ${r.probes}, fast ${r.fast}); B out-of-order ${r.ofo}, receive-queue drops ${rcvDrop} (B: ${rcvDetail}; the last two are A's)`);
    res.runs.push(r);
  }
}

const waitPrompts = (a: Session, b: Session) => Promise.all([a.waitFor(PROMPT, 0, 1_800_000, 'the prompt of A'), b.waitFor(PROMPT, 0, 1_800_000, 'the prompt of B')]);

async function runTsvm(): Promise<Result> {
  const res: Result = { label: `tsvm (${MODEL}, tsvm switch)`, runs: [], info: [] };
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-netpair-'));
  const sock = join(dir, 'lab.sock');
  const sw = tsvm(['switch', '-listen', `unix:${sock}`, '-dhcp', '10.0.3.0/24']);
  const vms: Session[] = [];
  try {
    await sw.waitFor(/serving unix:/, 0, 60_000, 'the switch banner');
    const vm = (name: string, mac: string) => {
      const dump = DUMP ? ['-object', `filter-dump,id=d,netdev=n,file=${resolve(DUMP, `${name}.pcap`)}`] : [];
      const s = tsvm(['run', '-timeout', '3000', '-netdev', `switch,id=n,path=${sock}`, '-device', `${MODEL},netdev=n,mac=${mac}`, ...dump]);
      vms.push(s);
      return s;
    };
    progress(`tsvm: booting two guests (${MODEL}) on the switch`);
    const a = vm('a', MAC_A);
    const b = vm('b', MAC_B);
    await waitPrompts(a, b);
    const ip = (s: Session, who: string) => {
      const m = /network: eth0 (10\.0\.3\.\d+)/.exec(s.out);
      if (!m) throw new Error(`${who} got no address: ${s.out.slice(-800)}`);
      return m[1];
    };
    const ipB = ip(b, 'B');
    ip(a, 'A');
    await measure('tsvm', a, b, ipB, res);
    const info = (s: Session) => s.monitor('info network', /at the NIC|unknown command/, 30_000).catch((e: Error) => `(${e.message.slice(0, 80)})`);
    for (const [who, s] of [['A', a], ['B', b]] as const) res.info.push(`VM ${who} info network: ${(await info(s)).trim().split('\n').filter((l) => /net0|\\|frames/.test(l)).join(' | ')}`);
  } catch (e) {
    res.error = (e as Error).message.slice(0, 300);
    progress(`tsvm: FAILED ${res.error}`);
  } finally {
    for (const s of vms) s.child.kill('SIGKILL');
    sw.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

async function runQemu(): Promise<Result> {
  const res: Result = { label: `QEMU TCG (${MODEL}, socket netdev)`, runs: [], info: [] };
  const img = findDefaultImage();
  if (!img) return { ...res, error: 'the default guest image is missing: run `node bin/tsvm.js image build`' };
  if (!qemuVersion()) return { ...res, error: `${QEMU} not installed` };
  const port = await freePort();
  const vms: Session[] = [];
  try {
    const vm = (how: 'listen' | 'connect', mac: string) => {
      const s = new Session(QEMU, qemuGuestArgs(img, 128, ['-netdev', `socket,id=n,${how}=127.0.0.1:${port}`, '-device', `${MODEL},netdev=n,mac=${mac}`]), { nice: 10 });
      vms.push(s);
      return s;
    };
    progress(`QEMU: booting two guests (${MODEL}) joined by a socket netdev on 127.0.0.1:${port}`);
    const a = vm('listen', MAC_A);
    // QEMU opens its netdevs before the guest runs: once A prints anything, B can connect
    await a.waitFor(/\S/, 0, 60_000, 'QEMU A\'s first output');
    const b = vm('connect', MAC_B);
    await waitPrompts(a, b);
    for (const [s, ip] of [[a, '10.0.3.10'], [b, '10.0.3.11']] as const) await sh(s, `ifconfig eth0 ${ip} netmask 255.255.255.0 up`);
    await measure('QEMU', a, b, '10.0.3.11', res);
  } catch (e) {
    res.error = (e as Error).message.slice(0, 300);
    progress(`QEMU: FAILED ${res.error}`);
  } finally {
    for (const s of vms) s.child.kill('SIGKILL');
    await Promise.all(vms.map((s) => s.exited));
  }
  return res;
}

async function main(): Promise<void> {
  const load0 = loadavg()[0];
  const start = new Date().toISOString().slice(0, 16);
  const results: Result[] = [];
  // one emulator at a time
  if (ONLY.includes('tsvm')) results.push(await runTsvm());
  if (ONLY.includes('qemu')) results.push(await runQemu());
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).stdout?.toString().trim();
  const mibs = (r: Result, pass: string) => {
    const t = r.runs.find((x) => x.pass === pass);
    return t ? MIB / t.secs : undefined;
  };
  const f = (x?: number, d = 2) => (x === undefined ? '-' : x.toFixed(d));
  const cell = (r: Result, pass: string) => {
    const t = r.runs.find((x) => x.pass === pass);
    return t ? `${f(MIB / t.secs)} (${t.secs.toFixed(2)} s)` : '-';
  };
  const retr = (r: Result) => r.runs.map((t) => `${t.retrans}/${t.out} (${t.timeouts}, ${t.probes})`).join(', ') || '-';
  const out = [
    `bench/net-pair: two default guests (${MODEL}), VM to VM, ${MIB} MiB A -> B with busybox nc; ${start} UTC, ${git ?? '?'}; node ${process.version}; ${qemuVersion() ?? 'no QEMU'}`,
    `host: ${cpus().length} CPUs; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
    '',
    '| target | ping min/avg/max ms | cold MiB/s (s) | warm MiB/s (s) | A retransmitted/sent (RTO, TLP), cold, warm | note |',
    '| --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => `| ${r.label} | ${r.ping ? `${r.ping.min} / ${r.ping.avg} / ${r.ping.max}${r.ping.got < PINGS ? ` (${r.ping.got}/${PINGS})` : ''}` : '-'} | ${cell(r, 'cold')} | ${cell(r, 'warm')} | ${retr(r)} | ${r.error ?? ''} |`),
  ];
  const t = results.find((r) => r.label.startsWith('tsvm'));
  const q = results.find((r) => r.label.startsWith('QEMU'));
  if (t?.runs.length && q?.runs.length) {
    const ratio = (x?: number, y?: number) => (x && y ? `${(x / y).toFixed(2)}x` : '-');
    out.push(`| tsvm/QEMU | avg ${t.ping && q.ping ? ratio(Number(t.ping.avg), Number(q.ping.avg)) : '-'} (round trip, above 1: tsvm slower) | ${ratio(mibs(t, 'cold'), mibs(q, 'cold'))} | ${ratio(mibs(t, 'warm'), mibs(q, 'warm'))} | (MiB/s, below 1: tsvm slower) | |`);
  }
  for (const r of results) out.push(...r.info.map((l) => `${r.label}: ${l}`));
  console.log(out.join('\n'));
}

main().catch((e) => {
  console.error(`bench:net-pair: ${(e as Error).message}`);
  process.exit(1);
});

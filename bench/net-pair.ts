/**
 * Two default guests on a private switch, as a user sets them up: `tsvm
 * switch -listen unix:PATH -dhcp 10.0.3.0/24` and two `tsvm run -nic
 * switch,path=PATH` processes (the default NIC, virtio-net, unless --model).
 * Measured between the guests:
 *  - ping: busybox `ping -c 20` from A to B, mean and max round trip;
 *  - TCP: A sends N MiB of zeros with busybox nc to B's `nc -l`, twice (cold,
 *    then warm); host wall seconds from A's command until B holds every byte,
 *    MiB/s;
 *  - the guests' TCP counters over each transfer (from /proc/net/snmp and
 *    /proc/net/netstat): the sender's retransmitted segments, timeouts and
 *    loss probes, the receiver's out-of-order segments;
 *  - where frames were dropped: each VM's `info network` (monitor), which
 *    names the backend's and the NIC's drops.
 * Nothing leaves the machine: the network is a UNIX socket in a temporary folder.
 * Usage: node dist/bench/net-pair.js [--mib N] [--model virtio-net-pci|e1000|ne2k_pci] [--pings N] [--dump DIR]
 * (--dump: each VM writes a pcap of its NIC's traffic into DIR, for tcpdump.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-netpair-'));
  const sock = join(dir, 'lab.sock');
  const load0 = loadavg()[0];
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
    progress(`booting two guests (${MODEL}) on the switch`);
    const a = vm('a', '52:54:00:00:03:0a');
    const b = vm('b', '52:54:00:00:03:0b');
    await Promise.all([a.waitFor(PROMPT, 0, 1_800_000, 'the prompt of A'), b.waitFor(PROMPT, 0, 1_800_000, 'the prompt of B')]);
    const ip = (s: Session, who: string) => {
      const m = /network: eth0 (10\.0\.3\.\d+)/.exec(s.out);
      if (!m) throw new Error(`${who} got no address: ${s.out.slice(-800)}`);
      return m[1];
    };
    const ipB = ip(b, 'B');
    ip(a, 'A');
    progress(`up; pinging B from A ${PINGS} times`);
    await sh(a, `ping -c 2 ${ipB} >/dev/null`); // ARP, and the guests' first run of the path
    const p = await sh(a, `ping -c ${PINGS} ${ipB} | tail -2`);
    const pm = /(\d+) packets received.*\n.*= ([\d.]+)\/([\d.]+)\/([\d.]+) ms/s.exec(p);
    const ping = pm ? { got: Number(pm[1]), min: Number(pm[2]), avg: Number(pm[3]), max: Number(pm[4]) } : null;
    progress(`ping: ${ping ? `${ping.got}/${PINGS}, min/avg/max ${ping.min}/${ping.avg}/${ping.max} ms` : p}`);

    const rows: string[] = [];
    const size = MIB * 1048576;
    for (const pass of ['cold', 'warm']) {
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
      const r = {
        retrans: diff(ca, ca2, 'RetransSegs'),
        out: diff(ca, ca2, 'OutSegs'),
        timeouts: diff(ca, ca2, 'TCPTimeouts'),
        probes: diff(ca, ca2, 'TCPLossProbes'),
        fast: diff(ca, ca2, 'TCPFastRetrans'),
        ofo: diff(cb, cb2, 'TCPOFOQueue'),
        rcvDrop: diff(cb, cb2, 'TCPRcvQDrop') + diff(cb, cb2, 'TCPBacklogDrop') + diff(cb, cb2, 'PruneCalled'),
        rcvDetail: ['TCPRcvQDrop', 'TCPBacklogDrop', 'PruneCalled', 'RcvPruned', 'TCPRcvCollapsed', 'TCPZeroWindowDrop', 'TCPWantZeroWindowAdv', 'TCPSpuriousRTOs', 'TCPDSACKRecv'].map((k) => `${k} ${k === 'TCPSpuriousRTOs' || k === 'TCPDSACKRecv' ? diff(ca, ca2, k) : diff(cb, cb2, k)}`).join(', '),
      };
      progress(`${pass}: ${MIB} MiB in ${secs.toFixed(2)} s; A retransmitted ${r.retrans} of ${r.out} segments (timeouts ${r.timeouts}, loss probes ${r.probes}, fast ${r.fast}); B out-of-order ${r.ofo}, receive-queue drops ${r.rcvDrop} (B: ${r.rcvDetail}; the last two are A's)`);
      rows.push(`| ${pass} | ${(MIB / secs).toFixed(2)} | ${secs.toFixed(2)} | ${r.retrans} / ${r.out} | ${r.timeouts} | ${r.probes} | ${r.fast} | ${r.ofo} |`);
    }
    const info = (s: Session) => s.monitor('info network', /at the NIC|unknown command/, 30_000).catch((e: Error) => `(${e.message.slice(0, 80)})`);
    const infoA = await info(a);
    const infoB = await info(b);
    const out = [
      `bench/net-pair: two default guests (${MODEL}) on a tsvm switch (UNIX socket), ${MIB} MiB A -> B with busybox nc; node ${process.version}`,
      `host: ${cpus().length} CPUs; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
      '',
      `ping A -> B: ${ping ? `${ping.got}/${PINGS} answered, round trip min/avg/max ${ping.min}/${ping.avg}/${ping.max} ms` : 'no summary'}`,
      '',
      '| run | MiB/s | s | A retransmitted / sent segments | A RTO timeouts | A loss probes | A fast retransmits | B out-of-order |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      `VM A info network: ${infoA.trim().split('\n').filter((l) => /net0|\\|frames/.test(l)).join(' | ')}`,
      `VM B info network: ${infoB.trim().split('\n').filter((l) => /net0|\\|frames/.test(l)).join(' | ')}`,
    ];
    console.log(out.join('\n'));
  } finally {
    for (const s of vms) s.child.kill('SIGKILL');
    sw.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench:net-pair: ${(e as Error).message}`);
  process.exit(1);
});

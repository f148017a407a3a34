/**
 * `tsvm list`, `tsvm start`, `tsvm stop` and `tsvm console` through the
 * daemon that serves the directory (`tsvm serve`). The console attaches this
 * terminal to a VM's serial port; Ctrl-A X detaches and the VM goes on.
 */
import { resolve } from 'node:path';
import { ClientError, DaemonClient, findDaemon } from '../server/client.js';
import { defaultDir } from './daemon.js';
import { UsageError } from './options.js';

export interface VmInfo {
  name: string;
  state: string;
  reason: string | null;
  memoryBytes: number;
  autostart: boolean;
  restart: string;
  /** The VM's own process while it runs (the daemon's --isolation process), or null. */
  pid: number | null;
  /** The cap on its process's resident set (MiB), and whether the daemon enforces it (process isolation). */
  rssLimitMiB?: number;
  rssLimitEnforced?: boolean;
}

/** The width `tsvm list` keeps to: a row longer than this puts its reason on a line of its own. */
const LIST_WIDTH = 80;

/** A running VM process's resident set (MiB, from its stats), or null: not running, not a process of its own, gone meanwhile, or no sample of it yet. */
async function rssMiB(c: DaemonClient, v: VmInfo): Promise<number | null> {
  if (v.pid === null || (v.state !== 'running' && v.state !== 'paused' && v.state !== 'starting')) return null;
  try {
    const s = await c.request<{ processRssBytes: number; sampleAgeMs: number | null }>('GET', `/api/vms/${encodeURIComponent(v.name)}/stats`);
    return s.sampleAgeMs === null ? null : Math.round(s.processRssBytes / 1048576); // null: no sample yet (a process still starting)
  } catch (e) {
    if (e instanceof ClientError) return null; // it stopped between the list and its stats
    throw e;
  }
}

/**
 * The RSS column: "435/768M" (its process's resident set of the limit the
 * daemon enforces), "-/768M" while it does not run, "-" under thread
 * isolation (its memory is the daemon's, and no limit is enforced).
 */
function rssCell(v: VmInfo, rss: number | null): string {
  if (v.rssLimitEnforced === false || v.rssLimitMiB === undefined) return rss === null ? '-' : `${rss}M`;
  return `${rss ?? '-'}/${v.rssLimitMiB}M`;
}

/** `tsvm list`'s table: fixed columns, then the reason; a reason that would pass LIST_WIDTH goes on the next line, indented. */
export function formatList(vms: VmInfo[], rss: (number | null)[]): string {
  const head = ['NAME', 'STATE', 'MEMORY', 'RSS/LIMIT', 'AUTOSTART', 'RESTART', 'PID'];
  const rows = [head, ...vms.map((v, i) => [v.name, v.state, `${v.memoryBytes / 1048576}M`, rssCell(v, rss[i]), v.autostart ? 'yes' : 'no', v.restart, v.pid === null ? '-' : String(v.pid)])];
  const w = head.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(w[i])).join('  ');
  const out = [`${line(head)}  REASON`.trimEnd()];
  vms.forEach((v, i) => {
    const l = line(rows[i + 1]);
    const reason = v.reason ?? '';
    if (!reason) out.push(l.trimEnd());
    else if (l.length + 2 + reason.length <= LIST_WIDTH) out.push(`${l}  ${reason}`);
    else out.push(l.trimEnd(), `  ${reason}`);
  });
  return out.join('\n') + '\n';
}

const ESCAPE = 0x01; // Ctrl-A
/** How long `tsvm stop` waits for the VM to have stopped (the daemon forces a stop after 5 s: HARD_STOP_MS in host.ts). */
const STOP_WAIT_MS = 30_000;

function parse(cmd: string, argv: string[], flags: string[]): { dir: string; names: string[]; flags: Set<string> } {
  let dir = defaultDir();
  const names: string[] = [];
  const set = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dir') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${cmd}: --dir needs a directory`);
      dir = resolve(v);
    } else if (a.startsWith('--dir=')) dir = resolve(a.slice(6));
    else if (flags.includes(a)) set.add(a);
    else if (a.startsWith('-')) throw new UsageError(`${cmd}: unknown option '${a}'`);
    else names.push(a);
  }
  return { dir, names, flags: set };
}

function connect(cmd: string, dir: string): DaemonClient {
  const addr = findDaemon(dir);
  if (!addr) throw new UsageError(`${cmd}: no daemon is running for ${dir}; start one with 'tsvm serve --dir ${dir}' (or pass --dir)`);
  return new DaemonClient(addr);
}

function oneName(cmd: string, names: string[]): string {
  if (names.length !== 1) throw new UsageError(`${cmd}: give one VM name, as in 'tsvm ${cmd} NAME'`);
  return names[0];
}

/** Run a daemon-client command; returns the exit status. */
export async function remoteCommand(cmd: 'list' | 'start' | 'stop' | 'console', argv: string[]): Promise<number> {
  const p = parse(cmd, argv, cmd === 'stop' ? ['--acpi'] : cmd === 'start' ? ['--force-boot'] : []);
  const c = connect(cmd, p.dir);
  try {
    switch (cmd) {
      case 'list': {
        const { vms } = await c.request<{ vms: VmInfo[] }>('GET', '/api/vms');
        process.stdout.write(formatList(vms, await Promise.all(vms.map((v) => rssMiB(c, v)))));
        return 0;
      }
      case 'start': {
        const forceBoot = p.flags.has('--force-boot');
        const v = await c.request<VmInfo>('POST', `/api/vms/${encodeURIComponent(oneName(cmd, p.names))}/start`, forceBoot ? { forceBoot } : undefined);
        process.stdout.write(`${v.name}: ${v.state}\n`);
        return 0;
      }
      case 'stop': {
        const name = oneName(cmd, p.names);
        const acpi = p.flags.has('--acpi');
        const path = `/api/vms/${encodeURIComponent(name)}`;
        let v = await c.request<VmInfo>('POST', `${path}/${acpi ? 'powerdown' : 'stop'}`);
        if (acpi) {
          // the guest powers off in its own time, or not at all
          process.stdout.write(`${v.name}: pressed the ACPI power button\n`);
          return 0;
        }
        // the daemon answers once it has asked the VM to stop ('stopping'): wait for the end, so that
        // the VM is stopped when this command returns (the daemon ends it by force after a few seconds)
        const deadline = Date.now() + STOP_WAIT_MS;
        while (v.state === 'stopping' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          v = await c.request<VmInfo>('GET', path);
        }
        if (v.state === 'stopping') {
          process.stderr.write(`tsvm: stop: '${v.name}' is still stopping after ${STOP_WAIT_MS / 1000} s\n`);
          return 1;
        }
        process.stdout.write(`${v.name}: ${v.state}${v.reason && v.state !== 'stopped' ? ` (${v.reason})` : ''}\n`);
        return v.state === 'stopped' ? 0 : 1;
      }
      case 'console':
        return await attach(c, oneName(cmd, p.names));
    }
  } catch (e) {
    if (e instanceof ClientError) {
      process.stderr.write(`tsvm: ${cmd}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** Attach this terminal to a VM's serial console until Ctrl-A X or the VM stops. */
async function attach(c: DaemonClient, name: string): Promise<number> {
  const v = await c.request<VmInfo>('GET', `/api/vms/${encodeURIComponent(name)}`);
  if (v.state !== 'running' && v.state !== 'paused' && v.state !== 'starting') {
    process.stderr.write(`tsvm: console: VM '${name}' is ${v.state}; start it with 'tsvm start ${name}'\n`);
    return 1;
  }
  const ws = c.socket(`/api/vms/${encodeURIComponent(name)}/console`);
  const events = c.socket('/api/events');
  const stdin = process.stdin;
  let escape = false;
  return await new Promise<number>((done) => {
    let finished = false;
    const finish = (code: number, msg: string) => {
      if (finished) return;
      finished = true;
      stdin.off('data', onData);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.destroy(); // a pipe left open would keep this process alive
      ws.close();
      events.close();
      process.stderr.write(msg);
      done(code);
    };
    const onData = (data: Buffer) => {
      const out: number[] = [];
      for (const b of data) {
        if (escape) {
          escape = false;
          if (b === 0x78 || b === 0x58) return finish(0, `\r\ntsvm: detached from '${name}'; it goes on running\r\n`);
          if (b === ESCAPE) out.push(ESCAPE);
        } else if (b === ESCAPE) escape = true;
        else out.push(b);
      }
      if (out.length && ws.readyState === ws.OPEN) ws.send(Uint8Array.from(out));
    };
    ws.on('open', () => {
      process.stderr.write(`tsvm: attached to '${name}' (Ctrl-A X detaches)\r\n`);
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on('data', onData);
      stdin.resume();
    });
    ws.on('message', (d: Buffer) => process.stdout.write(d));
    ws.on('unexpected-response', (_req, res) => finish(1, `tsvm: console: the daemon refused the console (${res.statusCode})\n`));
    ws.on('error', (e) => finish(1, `tsvm: console: ${e.message}\n`));
    ws.on('close', () => finish(0, `\r\ntsvm: the console of '${name}' closed\r\n`));
    events.on('message', (d) => {
      const e = JSON.parse(String(d)) as { type: string; vm?: string; state?: string; reason?: string | null };
      if (e.type === 'state' && e.vm === name && (e.state === 'stopped' || e.state === 'crashed')) finish(0, `\r\ntsvm: '${name}' ${e.state}${e.reason ? ` (${e.reason})` : ''}\r\n`);
    });
  });
}

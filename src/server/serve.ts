/**
 * `tsvm serve`: the daemon for one directory of VM folders. Creates the
 * access token on first start (mode 0600), listens on loopback unless told
 * otherwise, starts the autostart VMs, and on SIGTERM or SIGINT powers the
 * guests off in order (see VmHost.shutdown). It leaves `daemon.json` in the
 * directory while it runs so that the CLI finds it.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { DEFAULT_MAX_UPLOAD_BYTES } from './upload.js';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { FolderStore } from './store.js';
import { VmHost } from './host.js';
import { ISOLATIONS, VM_NICENESS, type Isolation } from '../vmm/worker-channel.js';
import { createDaemonServer } from './server.js';
import { hostQmpTarget, QmpServer } from './qmp.js';
import { defaultVmDir, INFO_FILE, TOKEN_FILE } from './discovery.js';

export class ServeUsageError extends Error {}

export const DEFAULT_PORT = 8406;
export const DEFAULT_SHUTDOWN_WAIT_S = 30;

export { defaultVmDir, TOKEN_FILE, INFO_FILE };

/** The daemon's token for `dir`, created (32 random bytes, hex) with mode 0600 on first use. */
export function loadOrCreateToken(dir: string): { token: string; created: boolean } {
  const path = join(dir, TOKEN_FILE);
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) chmodSync(path, 0o600); // someone widened it: narrow it again
    const token = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(token)) return { token, created: false };
  }
  const token = randomBytes(32).toString('hex');
  writeFileSync(path, token + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return { token, created: true };
}

export const SERVE_HELP = `Usage: tsvm serve [--dir DIR] [--listen ADDR:PORT] [--shutdown-wait SECONDS] [--max-upload-mib MIB] [--isolation process|thread]
                  [--vm-niceness N]
       tsvm serve --print-systemd-unit [--dir DIR] [--listen ADDR:PORT]

Runs the daemon for the VM folders in DIR (default ${defaultVmDir()}): a REST and
WebSocket API under /api/ and the web console at /. It listens on 127.0.0.1:${DEFAULT_PORT}
unless --listen says otherwise (port 0: any free port). Every request needs the token
it prints; the token is kept in DIR/${TOKEN_FILE} (readable by you alone).

  --dir DIR                the directory of VM folders
  --listen ADDR:PORT       where to listen (plain HTTP: keep it on loopback or a trusted network)
  --shutdown-wait SECONDS  on SIGTERM, how long the guests get to power off (default ${DEFAULT_SHUTDOWN_WAIT_S})
  --max-upload-mib MIB     the largest ISO image a client may upload (default ${DEFAULT_MAX_UPLOAD_BYTES / 1048576})
  --isolation process|thread
                           run each VM in a child process of its own (the default: a crash, a kill
                           or running out of memory ends that VM alone, and its CPU and memory are
                           its own), or in a worker thread of the daemon (starts faster, less memory)
  --vm-niceness N          run each VM process N nice steps below the daemon, 0 to 19 (default
                           ${VM_NICENESS}; at most nice 19), so the API and the web console answer
                           while the VMs keep every core busy; 0: the daemon's priority
  --print-systemd-unit     print a systemd user unit that runs this daemon, and exit
`;

interface ServeArgs {
  dir: string;
  host: string;
  port: number;
  shutdownWaitMs: number;
  maxUploadBytes: number;
  isolation: Isolation;
  /** Nice steps between the daemon and its VM processes. */
  vmNiceness: number;
  printUnit: boolean;
}

export function parseServeArgs(argv: string[]): ServeArgs | 'help' {
  const a: ServeArgs = { dir: defaultVmDir(), host: '127.0.0.1', port: DEFAULT_PORT, shutdownWaitMs: DEFAULT_SHUTDOWN_WAIT_S * 1000, maxUploadBytes: DEFAULT_MAX_UPLOAD_BYTES, isolation: 'process', vmNiceness: VM_NICENESS, printUnit: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ServeUsageError(`serve: ${flag} needs a value (see 'tsvm serve --help')`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--dir':
        a.dir = resolve(value());
        break;
      case '--listen': {
        const v = value();
        const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(v);
        if (!m || Number(m[2]) > 65535) throw new ServeUsageError(`serve: --listen '${v}' is not ADDR:PORT, as in 127.0.0.1:${DEFAULT_PORT}`);
        a.host = m[1].replace(/^\[|\]$/g, '');
        a.port = Number(m[2]);
        break;
      }
      case '--shutdown-wait': {
        const v = value();
        const s = Number(v);
        if (!Number.isFinite(s) || s < 0) throw new ServeUsageError(`serve: --shutdown-wait '${v}' is not a number of seconds`);
        a.shutdownWaitMs = s * 1000;
        break;
      }
      case '--max-upload-mib': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new ServeUsageError(`serve: --max-upload-mib '${v}' is not a whole number of MiB`);
        a.maxUploadBytes = Number(v) * 1048576;
        break;
      }
      case '--isolation': {
        const v = value();
        if (!(ISOLATIONS as readonly string[]).includes(v)) throw new ServeUsageError(`serve: --isolation '${v}' is not one of ${ISOLATIONS.join(', ')}`);
        a.isolation = v as Isolation;
        break;
      }
      case '--vm-niceness': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) > 19) throw new ServeUsageError(`serve: --vm-niceness '${v}' is not a whole number of nice steps from 0 to 19`);
        a.vmNiceness = Number(v);
        break;
      }
      case '--print-systemd-unit':
        a.printUnit = true;
        break;
      default:
        throw new ServeUsageError(`serve: unknown option '${arg}' (see 'tsvm serve --help')`);
    }
  }
  return a;
}

/**
 * One word of an ExecStart= line (systemd.service(5), "Command lines"): '%' is a specifier and '$'
 * an environment variable there, so both are doubled; a word with a space, quote or backslash is
 * double-quoted with C-style escapes.
 */
function unitWord(w: string): string {
  const v = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,.\/\[\]$-]+$/.test(v) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A systemd user unit for this daemon (install as ~/.config/systemd/user/tsvm.service). */
export function systemdUnit(a: ServeArgs): string {
  const bin = fileURLToPath(new URL('../../../bin/tsvm.js', import.meta.url));
  const waitS = Math.ceil(a.shutdownWaitMs / 1000);
  return `# tsvm daemon: install as ~/.config/systemd/user/tsvm.service, then
#   systemctl --user daemon-reload && systemctl --user enable --now tsvm
# (loginctl enable-linger $USER keeps it running while you are logged out)
[Unit]
Description=tsvm virtual machine daemon (${a.dir.replace(/%/g, '%%')})
After=network.target

[Service]
Type=simple
ExecStart=${unitWord(process.execPath)} ${unitWord(bin)} serve --dir ${unitWord(a.dir)} --listen ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port} --shutdown-wait ${waitS}${a.maxUploadBytes !== DEFAULT_MAX_UPLOAD_BYTES ? ` --max-upload-mib ${Math.floor(a.maxUploadBytes / 1048576)}` : ''}${a.isolation !== 'process' ? ` --isolation ${a.isolation}` : ''}${a.vmNiceness !== VM_NICENESS ? ` --vm-niceness ${a.vmNiceness}` : ''}
# SIGTERM: the guests get ${waitS} s to power off; leave the daemon time to stop the rest.
# mixed: SIGTERM goes to the daemon alone, which powers off and suspends its VM processes
# itself (the whole group would kill them first); SIGKILL at the timeout reaches them all
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=${waitS + 30}
Restart=on-failure

[Install]
WantedBy=default.target
`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Run the daemon until SIGTERM/SIGINT. Resolves with the exit status. */
export async function serveCommand(argv: string[]): Promise<number> {
  const a = parseServeArgs(argv);
  if (a === 'help') {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  if (a.printUnit) {
    process.stdout.write(systemdUnit(a));
    return 0;
  }
  mkdirSync(a.dir, { recursive: true });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const { token, created } = loadOrCreateToken(a.dir);
  if (created) log(`created a new token in ${join(a.dir, TOKEN_FILE)} (mode 0600)`);
  const host = new VmHost(new FolderStore(a.dir), log, a.isolation, a.vmNiceness);
  host.on('event', (e) => {
    // a crash has its one line from the host already ("VM 'NAME' crashed: REASON", and where its output went)
    if (e.type === 'state' && e.state !== 'crashed') log(`VM '${e.vm}' ${e.state}${e.reason ? ` (${e.reason})` : ''}`);
  });
  const daemon = createDaemonServer({ host, token, log, maxUploadBytes: a.maxUploadBytes });
  // QMP: a socket in each VM folder, for tools written for QEMU
  const qmp = new Map<string, QmpServer>();
  const addQmp = (name: string) => {
    if (!qmp.has(name)) qmp.set(name, new QmpServer(hostQmpTarget(host, name), { path: join(host.store.path(name), 'qmp.sock') }));
  };
  for (const v of host.list()) addQmp(v.name);
  host.on('event', (e) => {
    if (e.type === 'created') addQmp(e.vm);
    if (e.type === 'deleted') {
      void qmp.get(e.vm)?.close();
      qmp.delete(e.vm);
    }
  });
  await new Promise<void>((res, rej) => {
    daemon.server.once('error', (e: NodeJS.ErrnoException) =>
      rej(new ServeUsageError(`serve: cannot listen on ${a.host}:${a.port}: ${e.code === 'EADDRINUSE' ? 'the address is in use (another daemon? pick another port with --listen)' : e.message}`)),
    );
    daemon.server.listen(a.port, a.host, () => res());
  });
  const port = (daemon.server.address() as AddressInfo).port;
  const urlHost = a.host.includes(':') ? `[${a.host}]` : a.host;
  const base = `http://${urlHost}:${port}`;
  writeFileSync(join(a.dir, INFO_FILE), JSON.stringify({ url: base, pid: process.pid }) + '\n', { mode: 0o600 });
  if (!isLoopback(a.host)) log(`warning: listening on ${a.host}, beyond this machine, over plain HTTP; anyone who sees the token can manage these VMs`);
  // the signal handlers are in place before the URL is printed: a supervisor (or a test) that
  // answers the URL line with SIGTERM gets the orderly shutdown, not SIGTERM's default sudden end
  const stopped = new Promise<number>((res) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        log(`${sig} again: stopping now`);
        process.exit(1);
      }
      stopping = true;
      log(`${sig}: powering off ${host.runningNames().length} VM(s), waiting up to ${a.shutdownWaitMs / 1000} s`);
      void host.shutdown(a.shutdownWaitMs).then(async () => {
        await Promise.all([...qmp.values()].map((q) => q.close()));
        await daemon.close();
        rmSync(join(a.dir, INFO_FILE), { force: true });
        log('daemon stopped');
        res(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.stdout.write(`tsvm daemon for ${a.dir}\nlistening on ${base}\nopen ${base}/?token=${token}\n`);
  host.autostart();
  return await stopped;
}

/**
 * `tsvm run -qmp`: the daemon's QMP server (src/server/qmp.ts) on the
 * terminal runner. The option is QEMU's spelling: unix:PATH,server[,wait=off]
 * or tcp:HOST:PORT,server[,wait=off]; wait=on, QEMU's default, holds the VM
 * until the first client connects.
 */
import { resolve } from 'node:path';
import { QmpServer, type QmpChange, type QmpListen, type QmpTarget } from '../server/qmp.js';
import type { VmRunner } from '../vmm/runner.js';
import type { VmFolder } from '../vmm/folder.js';
import { runMonitorCommand } from '../vmm/monitor.js';
import { UsageError } from './options.js';
import { onOff, splitQemuList } from './qemuopts.js';

export interface QmpOption {
  listen: QmpListen;
  /** Hold the VM until a client connects. */
  wait: boolean;
}

/** Parse a -qmp value; a message naming what is wrong otherwise. */
export function parseQmpOption(text: string, command = 'run'): QmpOption {
  const [where, ...props] = splitQemuList(text);
  const bad = (why: string) => new UsageError(`${command}: -qmp ${text}: ${why}; write unix:PATH,server[,wait=off] or tcp:HOST:PORT,server[,wait=off]`);
  let server = false;
  let wait = true;
  for (const p of props) {
    const eq = p.indexOf('=');
    const [k, v] = eq < 0 ? [p, 'on'] : [p.slice(0, eq), p.slice(eq + 1)];
    if (k === 'server') server = onOff(v, `-qmp ${text} server`);
    else if (k === 'wait') wait = onOff(v, `-qmp ${text} wait`);
    else throw bad(`'${k}' is not a QMP socket property`);
  }
  if (!server) throw bad('tsvm listens for QMP clients and does not connect out, so it needs server');
  if (where.startsWith('unix:')) {
    const path = where.slice(5);
    if (!path) throw bad('the socket path is empty');
    return { listen: { path: resolve(path) }, wait };
  }
  if (where.startsWith('tcp:')) {
    const m = /^tcp:(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(where);
    if (!m || Number(m[2]) > 65535) throw bad(`'${where}' is not tcp:HOST:PORT`);
    const host = m[1].replace(/^\[|\]$/g, '') || '127.0.0.1';
    return { listen: { host, port: Number(m[2]) }, wait };
  }
  throw bad(`'${where}' is neither unix:PATH nor tcp:HOST:PORT`);
}

/** The terminal runner as a QMP target. */
export function runnerQmpTarget(runner: VmRunner, folder?: VmFolder): QmpTarget {
  // the runner keeps its listeners for its life: one pair, fanned out to the watchers
  const watchers = new Set<(c: QmpChange) => void>();
  const tell = (c: QmpChange) => {
    for (const w of [...watchers]) w(c);
  };
  runner.on('state', (s) => {
    if (s === 'running' || s === 'paused') tell(s);
  });
  runner.on('stop', (cause) => tell(cause === 'poweroff' ? 'poweroff' : 'ended'));
  return {
    status() {
      const s = runner.state;
      return s === 'paused' ? 'paused' : s === 'running' || s === 'created' ? 'running' : s === 'error' ? 'internal-error' : 'shutdown';
    },
    pause: () => runner.pause(),
    resume: () => runner.resume(),
    reset: () => void runner.call(() => runner.machine.requestReset()),
    powerdown: () => void runner.call(() => runner.machine.pm.pressPowerButton()),
    quit: () => runner.stop('quit'),
    screenshot: () => runner.call(() => runner.screenshotPng()),
    async monitor(line) {
      const r = await runner.call(() => runMonitorCommand(runner, line, folder));
      if (r.quit) runner.stop('quit');
      return r.output;
    },
    watch(fn: (c: QmpChange) => void) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
  };
}

/** Start QMP for a runner: resolves once listening, and (wait=on) once the first client is there. */
export async function startQmp(opt: QmpOption, runner: VmRunner, folder: VmFolder | undefined, command: string): Promise<QmpServer> {
  const server = new QmpServer(runnerQmpTarget(runner, folder), opt.listen);
  const l = opt.listen;
  try {
    await server.listening;
  } catch (e) {
    await server.close();
    throw new UsageError(`${command}: -qmp: cannot listen on ${'path' in l ? l.path : `${l.host}:${l.port}`}: ${(e as Error).message}`);
  }
  // the port a client needs, when the system chose it (tcp:HOST:0)
  const where = 'path' in l ? l.path : `${l.host}:${server.port}`;
  if ('port' in l && l.port === 0) process.stderr.write(`tsvm: QMP listening on ${where}\n`);
  if (opt.wait) {
    process.stderr.write(`tsvm: waiting for a QMP client on ${where} (wait=off starts the VM at once)\n`);
    await server.firstClient;
  }
  return server;
}

/**
 * A preload (`node --import .../no-guest-exec.js bin/tsvm.js ...`) that makes it
 * impossible for tsvm to execute a guest binary on the host, and records every
 * program tsvm starts. It wraps every process-starting function of
 * node:child_process before tsvm loads; each command is resolved on PATH and
 * refused (the call throws, as a failed exec would) when:
 *   - the file is an ELF for another machine than the host's (the guest's i386
 *     binaries on an x86-64 or arm64 host), or a script whose interpreter is one;
 *   - the file lies in a folder the image builder unpacks packages into
 *     (tmpdir/tsvm-image-*) or in tsvm's cache (XDG_CACHE_HOME/tsvm).
 * Each start, allowed or refused, is appended as one JSON line to the file named
 * by TSVM_EXEC_LOG: {"cmd": resolved path, "args": [...], "refused": reason?}.
 */
import cp from 'node:child_process';
import { appendFileSync, closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { arch, homedir, tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** ELF e_machine of the host's own executables. */
const HOST_MACHINE: Record<string, number> = { x64: 62, ia32: 3, arm64: 183, arm: 40, riscv64: 243, ppc64: 21, s390x: 22, loong64: 258, mips: 8, mipsel: 8 };
const hostMachine = HOST_MACHINE[arch()];
const log = process.env['TSVM_EXEC_LOG'];
const forbiddenDirs = [join(realpathSync(tmpdir()), 'tsvm-image-'), join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'tsvm')];

function which(cmd: string, env: NodeJS.ProcessEnv | undefined): string | null {
  if (cmd.includes('/')) return resolve(cmd);
  for (const dir of (env?.['PATH'] ?? process.env['PATH'] ?? '').split(delimiter)) {
    const p = join(dir || '.', cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this folder
    }
  }
  return null;
}

function head(path: string): Buffer {
  const b = Buffer.alloc(256);
  const fd = openSync(path, 'r');
  try {
    return b.subarray(0, readSync(fd, b, 0, b.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** Why `path` must not run here, or null if it may. */
function refusal(path: string, depth = 0): string | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null; // does not exist: the spawn fails by itself
  }
  const dir = forbiddenDirs.find((d) => real.startsWith(d));
  if (dir) return `${real} is inside ${dir}*, where guest packages are unpacked`;
  let h: Buffer;
  try {
    h = head(real);
  } catch {
    return null;
  }
  if (h.length >= 20 && h[0] === 0x7f && h.toString('latin1', 1, 4) === 'ELF') {
    const machine = h[5] === 2 ? h.readUInt16BE(18) : h.readUInt16LE(18);
    if (hostMachine !== undefined && machine !== hostMachine) return `${real} is an ELF for machine ${machine}, not the host's (${hostMachine})`;
  } else if (h.toString('latin1', 0, 2) === '#!' && depth < 4) {
    const interp = /^#!\s*(\S+)/.exec(h.toString('latin1'))?.[1];
    if (interp && isAbsolute(interp)) return refusal(interp, depth + 1);
  }
  return null;
}

function guard(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv | undefined, shell: boolean): void {
  // with a shell, the command line's first word is what runs
  const prog = shell ? (cmd.trim().split(/\s+/)[0] ?? cmd) : cmd;
  const path = which(prog, env) ?? prog;
  const why = refusal(path);
  if (log) appendFileSync(log, JSON.stringify({ via: name, cmd: path, args, ...(why ? { refused: why } : {}) }) + '\n');
  if (why) {
    const e = new Error(`no-guest-exec: refused to execute ${path}: ${why}`) as NodeJS.ErrnoException;
    e.code = 'EACCES';
    throw e;
  }
}

type AnyFn = (...a: unknown[]) => unknown;
const mod = cp as unknown as Record<string, AnyFn>;
function wrap(name: string, shellAlways: boolean): void {
  const orig = mod[name];
  mod[name] = function (this: unknown, ...a: unknown[]) {
    const cmd = String(a[0]);
    const args = Array.isArray(a[1]) ? (a[1] as string[]) : [];
    const opts = (Array.isArray(a[1]) ? a[2] : a[1]) as { env?: NodeJS.ProcessEnv; shell?: unknown } | undefined;
    guard(name, cmd, args, opts?.env, shellAlways || Boolean(opts?.shell));
    return orig.apply(this, a);
  };
}
for (const n of ['spawn', 'spawnSync', 'execFile', 'execFileSync']) wrap(n, false);
for (const n of ['exec', 'execSync']) wrap(n, true);
// fork runs node itself: nothing of the guest's
syncBuiltinESMExports();

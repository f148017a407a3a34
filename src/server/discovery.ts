/**
 * Where a daemon is: the per-user directory of VMs, and the files a running
 * daemon leaves in the directory it serves (daemon.json: its URL and pid;
 * daemon.token: the access token). Light on purpose (node:fs, node:os and
 * node:path only): the CLI asks it before every `tsvm list` and `tsvm
 * start`, and the answer is usually "none", which must not cost loading the
 * daemon or its client.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The per-user directory of VMs when --dir is not given. */
export function defaultVmDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'tsvm', 'vms');
}

export const TOKEN_FILE = 'daemon.token';
export const INFO_FILE = 'daemon.json';

export interface DaemonAddress {
  url: string;
  token: string;
}

/** The daemon running for `dir`, or null when none is (no daemon.json, or its process is gone). */
export function findDaemon(dir: string): DaemonAddress | null {
  const info = join(dir, INFO_FILE);
  if (!existsSync(info)) return null;
  try {
    const j = JSON.parse(readFileSync(info, 'utf8')) as { url: string; pid: number };
    process.kill(j.pid, 0); // throws when the process no longer exists
    return { url: j.url, token: readFileSync(join(dir, TOKEN_FILE), 'utf8').trim() };
  } catch {
    return null;
  }
}

/**
 * Whether a daemon serves the directory a command names: `tsvm list` and
 * `tsvm start` then go through it (remote.ts), else they work on the folders
 * here. main.ts asks this before loading either path, so it loads only
 * server/discovery.ts (no daemon, no client, no WebSocket library).
 */
import { resolve } from 'node:path';
import { defaultVmDir, findDaemon } from '../server/discovery.js';

/** The directory a command means: --dir, else the current directory if a daemon serves it, else the daemon's default directory. */
export function defaultDir(): string {
  return findDaemon(process.cwd()) ? process.cwd() : defaultVmDir();
}

/** Whether a daemon serves the directory these arguments name (list and start then go through it). */
export function daemonRunning(argv: string[]): boolean {
  const i = argv.findIndex((a) => a === '--dir' || a.startsWith('--dir='));
  if (i < 0) return findDaemon(process.cwd()) !== null || findDaemon(defaultVmDir()) !== null;
  const v = argv[i] === '--dir' ? argv[i + 1] : argv[i].slice(6);
  return v !== undefined && findDaemon(resolve(v)) !== null;
}

/**
 * Long folder operations (create, clone, a stopped VM's snapshots) off the daemon's thread, with
 * progress: the job runs in a worker thread (job-worker.ts) and writes into
 * the folder's staging directory (`NAME.tsvm.creating-PID`, renamed into
 * place at the end, src/vmm/folder.ts). Progress comes two ways, and the
 * larger figure counts: the job tells the bytes of each file as it has
 * copied it, and the daemon adds up the bytes in the staging folder every
 * 200 ms, which shows a big file's copy (a disk image) as it grows. Either
 * way a byte counted is a byte on disk.
 */
import { Worker } from 'node:worker_threads';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JobReply, JobRequest } from './job-worker.js';
import { StoreError } from './store.js';

const WORKER_URL = new URL('./job-worker.js', import.meta.url);
const POLL_MS = 200;

/** Bytes of the files under `path` (0 when it does not exist); lock files and staging leftovers are not counted. */
export function treeBytes(path: string): number {
  let n = 0;
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  if (st.isFile()) return st.size;
  if (!st.isDirectory()) return 0;
  for (const e of readdirSync(path)) if (e !== 'lock' && !e.includes('.tmp-')) n += treeBytes(join(path, e));
  return n;
}

/**
 * Run a folder job; `progress(done, total)` is called with bytes as the
 * staging folder fills (`stagingPath`; null for a job in a VM's own folder,
 * which tells its own progress). Resolves, with the job's result, when it is
 * done; rejects with a StoreError (the same codes the store uses) when the
 * job fails.
 */
export function runFolderJob(req: JobRequest, stagingPath: string | null, totalBytes: number, progress: (done: number, total: number) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_URL, { workerData: req });
    let last = 0;
    const tell = (bytes: number) => {
      // 100 % is the caller's to say, when the folder is in place
      const done = Math.min(bytes, Math.max(0, totalBytes - 1));
      if (done > last) progress((last = done), totalBytes);
    };
    const poll = setInterval(() => {
      if (stagingPath !== null && existsSync(stagingPath)) tell(treeBytes(stagingPath));
    }, POLL_MS);
    let settled = false;
    const finish = (err: Error | null, result?: unknown) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      if (err) reject(err);
      else resolve(result);
    };
    w.on('message', (m: JobReply) => {
      if ('copied' in m) tell(m.copied);
      else if ('done' in m) {
        // a job that knows its own total (a snapshot's disk copies); 100 % is still the caller's
        if (m.done < m.total) progress(m.done, m.total);
      } else if (m.ok) finish(null, m.result);
      else finish(m.code ? new StoreError(m.code as StoreError['code'], m.error) : new Error(m.error));
    });
    w.on('error', (e) => finish(e));
    w.on('exit', (code) => finish(new Error(`the ${req.op} job ended (code ${code}) without an answer`)));
  });
}

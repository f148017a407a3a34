/**
 * A folder job in its own worker thread: creating or cloning a VM folder
 * copies files (a kernel and initrd, an uploaded ISO, a clone's disks and
 * snapshots), and a snapshot of a stopped VM copies its raw disks: each can
 * take seconds to minutes, and the daemon's thread must
 * answer the API meanwhile. The job uses the FolderStore as the daemon
 * would, and tells the daemon the bytes of each file copied as it goes
 * (the daemon also measures the staging folder, for progress inside a big
 * file: jobs.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FolderStore, type VmSettings } from './store.js';
import type { MachineSpec } from '../vmm/spec.js';
import type { NewDisks } from '../vmm/folder.js';

export type JobRequest = (
  | { op: 'create'; root: string; name: string; spec: MachineSpec; settings: VmSettings; newDisks: NewDisks }
  | { op: 'clone'; root: string; src: string; dst: string; linked: boolean; snapshot: string | null }
  /** A snapshot operation on a stopped VM: a raw disk's copy can take as long as a clone. */
  | { op: 'snapshot'; root: string; name: string; action: 'save' | 'revert' | 'delete'; tag: string; description: string }
) & {
  /**
   * For tests: the job stops after its first file copied (and reported)
   * until the daemon stores 1 in this cell, so a test can act while a job
   * is surely under way.
   */
  hold?: Int32Array;
};

export type JobReply = { ok: true; result?: unknown } | { ok: false; error: string; code: string | null } | { copied: number } | { done: number; total: number };

const req = workerData as JobRequest;
const store = new FolderStore(req.root);
let total = 0;
const copied = (bytes: number) => {
  parentPort?.postMessage({ copied: (total += bytes) } satisfies JobReply);
  if (req.hold) Atomics.wait(req.hold, 0, 0);
};
let reply: JobReply;
/** A snapshot operation's own progress, by bytes of its total. */
const progress = (done: number, all: number) => {
  parentPort?.postMessage({ done, total: all } satisfies JobReply);
  if (req.hold && done > 0) Atomics.wait(req.hold, 0, 0);
};
function snapshotJob(r: Extract<JobRequest, { op: 'snapshot' }>): unknown {
  if (r.action === 'save') return store.saveSnapshot(r.name, r.tag, r.description, progress);
  if (r.action === 'revert') return store.revertSnapshot(r.name, r.tag);
  store.deleteSnapshot(r.name, r.tag);
  return null;
}
try {
  let result: unknown;
  if (req.op === 'create') store.create(req.name, req.spec, req.settings, req.newDisks, copied);
  else if (req.op === 'snapshot') result = snapshotJob(req);
  else if (req.linked) store.linkedClone(req.src, req.dst, req.snapshot, copied);
  else store.clone(req.src, req.dst, copied);
  reply = { ok: true, result };
} catch (e) {
  reply = { ok: false, error: (e as Error).message ?? String(e), code: (e as { code?: string }).code ?? null };
}
parentPort?.postMessage(reply);

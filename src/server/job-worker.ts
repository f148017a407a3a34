/**
 * A folder job in its own worker thread: creating or cloning a VM folder
 * copies files (a kernel and initrd, an uploaded ISO, a clone's disks and
 * snapshots) that can take seconds to minutes, and the daemon's thread must
 * answer the API meanwhile. The job uses the FolderStore as the daemon
 * would; the daemon measures its progress from outside (jobs.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FolderStore, type VmSettings } from './store.js';
import type { MachineSpec } from '../vmm/spec.js';
import type { NewDisks } from '../vmm/folder.js';

export type JobRequest =
  | { op: 'create'; root: string; name: string; spec: MachineSpec; settings: VmSettings; newDisks: NewDisks }
  | { op: 'clone'; root: string; src: string; dst: string; linked: boolean; snapshot: string | null };

export type JobReply = { ok: true } | { ok: false; error: string; code: string | null };

const req = workerData as JobRequest;
const store = new FolderStore(req.root);
let reply: JobReply;
try {
  if (req.op === 'create') store.create(req.name, req.spec, req.settings, req.newDisks);
  else if (req.linked) store.linkedClone(req.src, req.dst, req.snapshot);
  else store.clone(req.src, req.dst);
  reply = { ok: true };
} catch (e) {
  reply = { ok: false, error: (e as Error).message ?? String(e), code: (e as { code?: string }).code ?? null };
}
parentPort?.postMessage(reply);

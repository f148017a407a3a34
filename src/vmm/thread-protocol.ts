/**
 * Messages between a VM's worker (vm-worker.ts, in a worker thread or a child
 * process) and its handle in the daemon (worker-handle.ts). Plain
 * structured-clone data that both transports carry (worker-channel.ts): the
 * worker owns the machine, the owner sees only these. Nothing here may share
 * memory (a SharedArrayBuffer does not cross a process boundary).
 */
import type { MachineSpec } from './spec.js';
import type { DiskCounters, NicCounters } from './iostats.js';

export type { DiskCounters, NicCounters };

/** What the owner gives the worker at start. */
export interface WorkerInit {
  spec: MachineSpec;
  /** Directory relative paths in the spec resolve against (the VM folder). */
  baseDir: string;
  /**
   * The VM folder (folder.ts), when the machine runs from one: the worker
   * holds its lock while running, resumes a suspended state, and saves,
   * reverts and deletes snapshots and suspends into it.
   */
  folder: string | null;
  /** The cap on this VM's host CPU share, percent of one core, or null. */
  cpuLimitPercent?: number | null;
}

/** A snapshot operation on a running VM. */
export type SnapshotOp = { op: 'save'; tag: string; description: string } | { op: 'revert'; tag: string } | { op: 'delete'; tag: string };

/** Owner -> worker. */
export type ToWorker =
  | { t: 'serial'; bytes: Uint8Array }
  /** A key by its DOM KeyboardEvent.code name ('KeyA', 'Enter', 'ControlLeft'). */
  | { t: 'key'; code: string; down: boolean }
  | { t: 'terminal-keys'; bytes: Uint8Array }
  | { t: 'pause' }
  | { t: 'resume' }
  | { t: 'reset' }
  | { t: 'powerdown' }
  | { t: 'stop' }
  /** Change the cap on host CPU share (percent of one core, or null for none). */
  | { t: 'cpu-limit'; percent: number | null }
  /**
   * Start or stop sending screen updates: the text screen's changed rows
   * when `on`; graphics-mode tiles too when `graphics` (someone watches);
   * `full` sends the whole screen once now.
   */
  | { t: 'screen'; on: boolean; graphics?: boolean; full?: boolean }
  /** PS/2 mouse movement (dy positive downwards, as on screen), buttons (bit 0 left, 1 right, 2 middle), wheel steps. */
  | { t: 'mouse'; dx: number; dy: number; buttons: number; dz: number }
  | { t: 'screenshot'; id: number }
  | { t: 'stats'; id: number }
  | { t: 'snapshot'; id: number; req: SnapshotOp }
  /** A human-monitor command (the monitor of Ctrl-A C); the answer is its text. */
  | { t: 'monitor'; id: number; line: string }
  /** Save the machine to the folder's suspended state and end the run. */
  | { t: 'suspend'; id: number }
  /** A test hook: throw inside the worker (as an emulator bug that escapes the runner would). */
  | { t: 'crash'; reason: string };

/** A rectangle of a graphics-mode frame, as PNG. */
export interface ScreenTile {
  x: number;
  y: number;
  w: number;
  h: number;
  png: Uint8Array;
}

/**
 * What changed on the screen since the last message (all of it on the
 * first): in text mode the changed rows, in graphics modes (while watched)
 * the changed tiles of the frame.
 */
export interface ScreenUpdate {
  cols: number;
  rows: number;
  /** Row index -> characters and their VGA attribute bytes. */
  changed: { row: number; text: string; attrs: number[] }[];
  cursor: { x: number; y: number; visible: boolean };
  /** 'text', 'graphics', 'vbe' or 'blank': text mode sends rows, graphics modes tiles. */
  mode: string;
  /** Graphics modes: the frame's size in pixels (0 in text mode). */
  width: number;
  height: number;
  /** Graphics modes: the tiles that changed (all of them on a full update). */
  tiles: ScreenTile[];
}

/** Figures a worker measures about itself. */
export interface WorkerStats {
  guestSeconds: number;
  /** Guest instructions per second over the last sampling interval. */
  instructionsPerSec: number;
  /**
   * Share of one host core the VM used over the last interval: its whole
   * process (all its threads) for a process worker, the worker thread's busy
   * time for a thread worker (0..1; a process may pass 1).
   */
  cpuShare: number;
  /** Host CPU time the VM has used, seconds: its process's user + system time, or a thread's busy time. */
  cpuSeconds: number;
  /** The resident set of the process the VM runs in, bytes: its own for a process worker, the daemon's (shared) for a thread. */
  rssBytes: number;
  /** The worker's JS heap, bytes; guest RAM is counted separately. */
  heapBytes: number;
  guestRamBytes: number;
  /** The cap in force, percent of one core, or null. */
  cpuLimitPercent: number | null;
  /** Traffic since the run started, per disk and per NIC. */
  disks: DiskCounters[];
  nics: NicCounters[];
}

/** Worker -> owner. */
export type FromWorker =
  | { t: 'state'; state: 'running' | 'paused' }
  | { t: 'serial'; bytes: Uint8Array }
  | { t: 'screen'; update: ScreenUpdate }
  | { t: 'stopped'; cause: string; error: string | null }
  | { t: 'screenshot'; id: number; png: Uint8Array }
  | { t: 'stats'; id: number; stats: WorkerStats }
  | { t: 'failed-to-start'; error: string }
  /** Progress of a snapshot save under way (request `id`): bytes done of the total, at each whole percent. */
  | { t: 'progress'; id: number; done: number; total: number }
  /** The answer to a snapshot or suspend request: the snapshot node (save, revert), or the error. */
  | { t: 'done'; id: number; result: unknown; error: string | null }
  /** The run resumed a suspended state instead of booting. */
  | { t: 'resumed' }
  /** An exception escaped the runner (a process worker says so before it ends; a thread's owner sees the exception itself). */
  | { t: 'failed'; error: string };

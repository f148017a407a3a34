/**
 * VmHost: the daemon's VMs and their lives. Each running VM is a VmWorker
 * (a child process of its own, or a worker thread); this class keeps what
 * outlives a worker (the record, the state shown to clients, the console's
 * recent output, the screen) and applies the service rules: autostart, the restart policy, and
 * the orderly shutdown on SIGTERM. Everything a client sees changing goes out
 * as an event.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { VmWorker, VM_NICENESS, type Isolation, type ScreenUpdate, type SnapshotOp, type WorkerExit, type WorkerStats } from '../vmm/worker-handle.js';
import type { DiskCounters, NicCounters } from '../vmm/iostats.js';
import { validateSpec, type MachineSpec } from '../vmm/spec.js';
import type { NewDisks, SnapshotNode, SnapshotTree } from '../vmm/folder.js';
import { DaemonNetworks, NetworkConfigError } from './networks.js';
import { DEFAULT_SETTINGS, StoreError, type FolderStore, type RestartPolicy, type VmRecord, type VmSettings } from './store.js';
import { runFolderJob, treeBytes } from './jobs.js';

export type VmState = 'stopped' | 'starting' | 'running' | 'paused' | 'stopping' | 'crashed';

/** What the API shows about a VM. */
export interface VmInfo {
  name: string;
  state: VmState;
  /** Why the VM is in its state: the last stop cause, or the crash reason. */
  reason: string | null;
  memoryBytes: number;
  autostart: boolean;
  restart: RestartPolicy;
  /** Restarts after crashes since the daemon started. */
  restarts: number;
  /** When the current run started (ISO time), or null. */
  startedAt: string | null;
  /** A stopped VM whose next start resumes a saved state. */
  suspended: boolean;
  /** The cap on host CPU share, percent of one core, or null. */
  cpuLimit: number | null;
  /** The private networks its NICs are on (none: user-mode networking, or no NIC). */
  networks: string[];
  /** Where its runs go: a child process of its own, or a worker thread of the daemon (the daemon's --isolation). */
  isolation: Isolation;
  /** The pid of the process running it now (isolation 'process'), or null. */
  pid: number | null;
  /** The cap on its process's resident set, MiB: its setting, or the default (guest RAM + heap limit + RSS_OVERHEAD_MIB). */
  rssLimitMiB: number;
  /** Whether the daemon enforces rssLimitMiB: under process isolation only (a thread's memory is the daemon's). */
  rssLimitEnforced: boolean;
}

/**
 * What a VM process holds besides guest RAM and its JS heap: the Node
 * runtime and the emulator's code, compiled Wasm, the TLB and buffers.
 * Measured: a default guest (64 MiB of RAM) at its shell, 435 MiB of RSS;
 * a bare SeaBIOS VM (64 MiB), 115-125 MiB (docs/server.md). 384 since the
 * wasm tier optimises hot regions by default: a default guest (128 MiB)
 * through bench/linux's workloads peaked at 626 MiB (docs/cpu-jit.md).
 */
export const RSS_OVERHEAD_MIB = 384;
/** The lines of a VM process's standard error its log keeps per run. */
const STDERR_LOG_LINES = 1000;

/** The RSS limit in force for a VM, MiB: its setting, or guest RAM + heap limit + RSS_OVERHEAD_MIB. */
export function rssLimitMiB(spec: MachineSpec, s: VmSettings): number {
  return s.rssLimitMiB ?? Math.ceil(spec.memoryBytes / (1024 * 1024)) + s.heapLimitMb + RSS_OVERHEAD_MIB;
}

/** A private network as the API shows it: declared in networks.json, or named by a VM's NIC. */
export interface NetworkInfo {
  name: string;
  /** Its DHCP server (`10.0.3.0/24[,router=..][,dns=..]`), or null for none. */
  dhcp: string | null;
  /** The VMs whose NICs are on it. */
  vms: string[];
  /** Whether the daemon serves its switch now (it starts serving when one of its VMs starts). */
  served: boolean;
}

export interface VmStats {
  name: string;
  state: VmState;
  /**
   * 0 when the VM process answered this request; else how old its last answer is (it was too busy to
   * answer within a second); null when the figures are no sample of this run: the VM does not run,
   * or its process has not answered once yet (it is starting, or busy or stopped), and they are zeros.
   */
  sampleAgeMs: number | null;
  guestSeconds: number;
  guestInstructionsPerSec: number;
  /** Percent of one host core the VM used lately: its whole process (isolation 'process'), or its thread's busy time. */
  hostCpuPercent: number;
  /** Host CPU time of this run, seconds (its process's user + system time, or its thread's busy time). */
  hostCpuSeconds: number;
  /** The resident set of the process the VM runs in, bytes: its own (isolation 'process'), or the daemon's, which all thread VMs share. */
  processRssBytes: number;
  /** This VM worker's JS heap plus its guest RAM, bytes. */
  vmMemoryBytes: number;
  /** The CPU cap the running VM applies (percent of one core), or the setting when it is not running; null for none. */
  cpuLimit: number | null;
  /** Traffic of this run, per disk and per NIC (empty when the VM is not running). */
  disks: DiskCounters[];
  nics: NicCounters[];
}

/** Events for the event stream. */
export type HostEvent =
  | { type: 'state'; vm: string; state: VmState; reason: string | null }
  | { type: 'created'; vm: string }
  | { type: 'deleted'; vm: string }
  | { type: 'snapshots'; vm: string }
  /** The networks changed (one added or removed). */
  | { type: 'networks' }
  /** A long operation's progress: `done` of `total` (bytes copied, or steps), and the same as a whole percent. */
  | { type: 'progress'; vm: string; operation: string; done: number; total: number; percent: number };

/** An API-level refusal, mapped to an HTTP status by the server. */
export class HostError extends Error {
  constructor(
    readonly code: 'not-found' | 'conflict' | 'bad-request' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

/** Recent console output kept for clients that attach later (bytes). */
const CONSOLE_BACKLOG = 256 * 1024;
/** Restart back-off after a crash: first delay and cap (ms). */
const RESTART_FIRST_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** How long a hard stop waits for the run to end before it kills the worker. */
const HARD_STOP_MS = 5000;
/**
 * How long a stats request waits for a busy VM process (a long compile, a
 * host with more VMs than cores, a stopped process) before it answers with
 * that process's last sample and its age, or, before its first sample, with
 * the VM's state and no figures: a page polling several VMs must not stall
 * on the slowest.
 */
export const STATS_WAIT_MS = 1000;

class Vm {
  worker: VmWorker | null = null;
  /** The last stats this run's worker answered, and when (for a stats request it is too busy to answer in time). */
  lastStats: { worker: VmWorker; at: number; stats: WorkerStats } | null = null;
  /** The stats question this run's worker has not answered yet, which every stats request meanwhile waits on. */
  statsAsked: { worker: VmWorker; answer: Promise<WorkerStats | null> } | null = null;
  state: VmState = 'stopped';
  reason: string | null = null;
  restarts = 0;
  startedAt: number | null = null;
  stopRequested = false;
  restartTimer: NodeJS.Timeout | null = null;
  console: Uint8Array[] = [];
  consoleBytes = 0;
  /** The screen as the clients draw it (text rows, or the latest tile at each place). */
  screen: ScreenUpdate | null = null;
  /** Screen sockets attached: graphics frames are rendered only while there are some. */
  screenWatchers = 0;
  /** Lines its process has written to its standard error in this run (they are in its log). */
  stderrLines = 0;
  constructor(public record: VmRecord) {}
}

export interface HostEvents {
  event: [e: HostEvent];
  serial: [vm: string, bytes: Uint8Array];
  screen: [vm: string, update: ScreenUpdate];
}

export class VmHost extends EventEmitter<HostEvents> {
  private readonly _vms = new Map<string, Vm>();
  /** The private networks (switches) the VMs' NICs name. */
  readonly networks: DaemonNetworks;

  constructor(
    readonly store: FolderStore,
    private readonly _log: (line: string) => void = () => {},
    /** Where VMs run: each in a child process of its own (the default), or in worker threads of this process. */
    readonly isolation: Isolation = 'process',
    /** How many nice steps below the daemon each VM process runs (tsvm serve --vm-niceness; VM_NICENESS by default). */
    readonly niceness: number = VM_NICENESS,
  ) {
    super();
    this.networks = new DaemonNetworks(store.root, _log);
    for (const name of store.names()) {
      try {
        this._vms.set(name, new Vm(store.read(name)));
      } catch (e) {
        this._log(`skipping VM folder '${name}': ${(e as Error).message}`);
      }
    }
  }

  private _get(name: string): Vm {
    const vm = this._vms.get(name);
    if (!vm) throw new HostError('not-found', `there is no VM '${name}'`);
    return vm;
  }

  /** A VM a request would change: one still being created or cloned to is a 409, not a 404. */
  private _getForChange(name: string): Vm {
    if (!this._vms.has(name) && this._pending.has(name)) throw new HostError('conflict', `VM '${name}' is being made (created, or cloned to); try again when that is done`);
    return this._get(name);
  }

  private _info(vm: Vm): VmInfo {
    const s = vm.record.settings;
    return {
      name: vm.record.name,
      state: vm.state,
      reason: vm.reason,
      memoryBytes: vm.record.spec.memoryBytes,
      autostart: s.autostart,
      restart: s.restart,
      restarts: vm.restarts,
      startedAt: vm.startedAt === null ? null : new Date(vm.startedAt).toISOString(),
      suspended: vm.worker === null && this._suspended(vm.record.name),
      cpuLimit: s.cpuLimit,
      networks: specNetworks(vm.record.spec),
      isolation: this.isolation,
      pid: vm.worker?.pid ?? null,
      rssLimitMiB: rssLimitMiB(vm.record.spec, s),
      rssLimitEnforced: this.isolation === 'process',
    };
  }

  private _suspended(name: string): boolean {
    try {
      return this.store.suspended(name);
    } catch {
      return false;
    }
  }

  private _setState(vm: Vm, state: VmState, reason: string | null = vm.reason): void {
    vm.state = state;
    vm.reason = reason;
    this.store.appendLog(vm.record.name, `state ${state}${reason ? ` (${reason})` : ''}`);
    this.emit('event', { type: 'state', vm: vm.record.name, state, reason });
  }

  list(): VmInfo[] {
    return [...this._vms.values()].sort((a, b) => a.record.name.localeCompare(b.record.name)).map((v) => this._info(v));
  }

  info(name: string): VmInfo {
    return this._info(this._get(name));
  }

  /**
   * Make a VM folder: the spec's files are copied in, `newDisks` are empty
   * disks of those sizes. The copying runs in a worker thread (jobs.ts), with
   * progress events by bytes copied.
   */
  async create(name: string, spec: MachineSpec, settings: Partial<VmSettings> = {}, newDisks: NewDisks = {}): Promise<VmInfo> {
    this._claim(name);
    try {
      const valid = validateSpec(spec);
      const op = 'create';
      const total = specFiles(valid).reduce((n, f) => n + treeBytes(f), 0);
      if (total > 0) this._progress(name, op, 0, total); // nothing to copy (firmware only): just the end
      await runFolderJob({ op: 'create', root: this.store.root, name, spec: valid, settings: { ...DEFAULT_SETTINGS, ...settings }, newDisks, hold: this.holdJobs ?? undefined }, this._staging(name), total, (d, t) => this._progress(name, op, d, t));
      this._progress(name, op, total, total);
    } catch (e) {
      if (e instanceof StoreError && e.code === 'exists') throw new HostError('conflict', e.message);
      throw e;
    } finally {
      this._pending.delete(name);
    }
    const vm = new Vm(this.store.read(name));
    this._vms.set(name, vm);
    this.emit('event', { type: 'created', vm: name });
    return this._info(vm);
  }

  /**
   * For tests: when set, folder jobs (create, clone) stop after their first
   * file copied until cell 0 holds 1 (Atomics.store and Atomics.notify), so a
   * test can check what is refused while a clone is surely under way.
   */
  holdJobs: Int32Array | null = null;

  /** Names being created or cloned to: taken, though no folder is in place yet. */
  private readonly _pending = new Set<string>();

  private _claim(name: string): void {
    if (this._vms.has(name) || this._pending.has(name)) throw new HostError('conflict', `a VM named '${name}' already exists`);
    this._pending.add(name);
  }

  /** Where a folder job stages the new folder (src/vmm/folder.ts names it so). */
  private _staging(name: string): string {
    return `${this.store.path(name)}.creating-${process.pid}`;
  }

  /** Progress of an operation done outside the host (an upload), as an event. */
  reportProgress(vm: string, operation: string, done: number, total: number): void {
    this._progress(vm, operation, done, total);
  }

  private _progress(vm: string, operation: string, done: number, total: number): void {
    // an operation with nothing to count is done when it says so: 0 of 0 is its end
    const percent = total > 0 ? Math.floor((done * 100) / total) : 100;
    this.emit('event', { type: 'progress', vm, operation, done, total, percent });
  }

  remove(name: string): void {
    const vm = this._getForChange(name);
    if (vm.worker) throw new HostError('conflict', `VM '${name}' is ${vm.state}; stop it before deleting it`);
    this._notCloning(name);
    if (vm.restartTimer) clearTimeout(vm.restartTimer);
    this.store.remove(name);
    this._vms.delete(name);
    this.emit('event', { type: 'deleted', vm: name });
  }

  updateSettings(name: string, patch: Partial<VmSettings>): VmInfo {
    const vm = this._getForChange(name);
    const settings = { ...vm.record.settings, ...patch };
    this.store.updateSettings(name, settings);
    vm.record = { ...vm.record, settings };
    if ('cpuLimit' in patch) vm.worker?.send({ t: 'cpu-limit', percent: settings.cpuLimit });
    if ('rssLimitMiB' in patch && vm.worker?.pid != null) vm.worker.rssLimitBytes = rssLimitMiB(vm.record.spec, settings) * 1024 * 1024;
    this.store.appendLog(name, `settings: ${Object.entries(patch).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
    this.emit('event', { type: 'state', vm: name, state: vm.state, reason: vm.reason });
    return this._info(vm);
  }

  /** Start a stopped VM; `forceBoot`: boot it afresh, discarding a suspended state instead of resuming it. */
  start(name: string, opts: { forceBoot?: boolean } = {}): VmInfo {
    const vm = this._getForChange(name);
    if (vm.worker) throw new HostError('conflict', `VM '${name}' is already ${vm.state}`);
    this._notCloning(name);
    if (vm.restartTimer) {
      clearTimeout(vm.restartTimer);
      vm.restartTimer = null;
    }
    this._launch(vm, opts.forceBoot === true);
    return this._info(vm);
  }

  private _launch(vm: Vm, forceBoot = false): void {
    const name = vm.record.name;
    // re-read the folder: the spec may have been edited while the VM was off
    try {
      vm.record = this.store.read(name);
    } catch (e) {
      this._log(`VM '${name}' crashed: ${(e as Error).message}`);
      this._setState(vm, 'crashed', (e as Error).message);
      throw new HostError('bad-request', (e as Error).message);
    }
    // dropped only once the folder has been read and checked: a start refused before this loses nothing
    if (forceBoot && this.store.suspended(name)) {
      this.store.folder(name).dropSuspended();
      this.store.appendLog(name, 'suspended state discarded (force boot)');
    }
    vm.stopRequested = false;
    vm.console = [];
    vm.consoleBytes = 0;
    vm.screen = null;
    if (vm.record.settings.resumeOnStart) {
      vm.record.settings = { ...vm.record.settings, resumeOnStart: false };
      this.store.updateSettings(name, vm.record.settings);
    }
    this.networks.ensure(vm.record.spec);
    // the VM process's standard error is the VM's (V8's dying words on a fatal out-of-memory, a
    // warning): it goes to its log, which the API serves, and the daemon's own log keeps one line
    // per crash (in _onExit)
    vm.stderrLines = 0;
    const onStderrLine = (line: string) => {
      if (vm.stderrLines++ === 0) this.store.appendLog(name, 'its process writes to its standard error:');
      // a process that floods its standard error must not fill the disk through vm.log: the first lines
      // of a run are kept (V8's fatal error is some 20)
      if (vm.stderrLines <= STDERR_LOG_LINES) this.store.appendLog(name, `stderr: ${line.length > 1000 ? `${line.slice(0, 1000)}...` : line}`);
      else if (vm.stderrLines === STDERR_LOG_LINES + 1) this.store.appendLog(name, `(its further standard error in this run is dropped, past ${STDERR_LOG_LINES} lines)`);
    };
    const t = new VmWorker({ spec: vm.record.spec, baseDir: vm.record.dir, folder: vm.record.dir, isolation: this.isolation, heapLimitMb: vm.record.settings.heapLimitMb, cpuLimitPercent: vm.record.settings.cpuLimit, rssLimitBytes: rssLimitMiB(vm.record.spec, vm.record.settings) * 1024 * 1024, onStderrLine, niceness: this.niceness });
    vm.worker = t;
    vm.startedAt = Date.now();
    this._setState(vm, 'starting', null);
    this.store.appendLog(name, `started in ${t.label}`);
    t.on('state', (s) => {
      if (vm.worker === t && vm.state !== 'stopping') this._setState(vm, s, null);
    });
    t.on('serial', (bytes) => {
      vm.console.push(bytes);
      vm.consoleBytes += bytes.length;
      while (vm.consoleBytes - vm.console[0].length >= CONSOLE_BACKLOG) vm.consoleBytes -= (vm.console.shift() as Uint8Array).length;
      this.emit('serial', name, bytes);
    });
    t.on('screen', (u) => {
      vm.screen = mergeScreen(vm.screen, u);
      this.emit('screen', name, u);
    });
    t.on('exit', (exit) => this._onExit(vm, t, exit));
    t.on('resumed', () => this.store.appendLog(name, 'resumed where it was suspended'));
    t.send({ t: 'screen', on: true, graphics: vm.screenWatchers > 0 });
  }

  private _onExit(vm: Vm, t: VmWorker, exit: WorkerExit): void {
    if (vm.worker !== t) return;
    vm.worker = null;
    vm.startedAt = null;
    const name = vm.record.name;
    this.store.releaseStaleLock(name, t.pid); // a worker that was killed or crashed could not release it
    if (exit.kind === 'stopped' || vm.stopRequested) {
      this._setState(vm, 'stopped', vm.reason === 'suspending' ? 'suspended' : exit.kind === 'stopped' ? exit.reason : 'quit');
      return;
    }
    this._log(`VM '${name}' crashed: ${exit.reason}${vm.stderrLines > 0 ? ` (its process's standard error, ${vm.stderrLines} lines, is in its log)` : ''}`);
    this._setState(vm, 'crashed', exit.reason);
    if (vm.record.settings.restart === 'on-crash' && this._vms.get(name) === vm) {
      const delay = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** Math.min(vm.restarts, 5));
      vm.restartTimer = setTimeout(() => {
        vm.restartTimer = null;
        if (vm.worker || this._vms.get(name) !== vm) return;
        vm.restarts++;
        this.store.appendLog(name, `restarting after a crash (policy on-crash, restart ${vm.restarts})`);
        try {
          this._launch(vm);
        } catch (e) {
          this._log(`VM '${name}' could not restart: ${(e as Error).message}`);
        }
      }, delay);
      vm.restartTimer.unref();
    }
  }

  private _running(name: string): { vm: Vm; t: VmWorker } {
    const vm = this._get(name);
    if (!vm.worker) throw new HostError('conflict', `VM '${name}' is ${vm.state}, not running`);
    return { vm, t: vm.worker };
  }

  /** Hard stop: end the run at the next slice boundary, as QEMU's `quit`. */
  stop(name: string): VmInfo {
    const { vm, t } = this._running(name);
    vm.stopRequested = true;
    this._setState(vm, 'stopping', 'stop requested');
    t.send({ t: 'resume' });
    t.send({ t: 'stop' });
    // a machine that does not reach a slice boundary is ended by force
    setTimeout(() => {
      if (vm.worker === t) void t.terminate();
    }, HARD_STOP_MS).unref();
    return this._info(vm);
  }

  /** Press the ACPI power button: the guest decides to power off (or not). */
  powerdown(name: string): VmInfo {
    const { vm, t } = this._running(name);
    t.send({ t: 'resume' });
    t.send({ t: 'powerdown' });
    this.store.appendLog(name, 'ACPI power button pressed');
    return this._info(vm);
  }

  pause(name: string): VmInfo {
    const { vm, t } = this._running(name);
    if (vm.state === 'paused') throw new HostError('conflict', `VM '${name}' is already paused`);
    t.send({ t: 'pause' });
    return this._info(vm);
  }

  resume(name: string): VmInfo {
    const { vm, t } = this._running(name);
    if (vm.state !== 'paused') throw new HostError('conflict', `VM '${name}' is ${vm.state}, not paused`);
    t.send({ t: 'resume' });
    return this._info(vm);
  }

  reset(name: string): VmInfo {
    const { vm, t } = this._running(name);
    t.send({ t: 'reset' });
    this.store.appendLog(name, 'reset');
    return this._info(vm);
  }

  /** Bytes for the guest's COM1. */
  serialInput(name: string, bytes: Uint8Array): void {
    this._vms.get(name)?.worker?.send({ t: 'serial', bytes });
  }

  /** A key press or release, by DOM KeyboardEvent.code name. */
  keyInput(name: string, code: string, down: boolean): void {
    this._vms.get(name)?.worker?.send({ t: 'key', code, down });
  }

  /** PS/2 mouse movement and buttons (dy positive downwards). */
  mouseInput(name: string, dx: number, dy: number, buttons: number, dz: number): void {
    this._vms.get(name)?.worker?.send({ t: 'mouse', dx, dy, buttons, dz });
  }

  /**
   * A screen client attaches: graphics frames are rendered while any is
   * attached, and the first one gets a whole frame sent. Returns the detach.
   */
  watchScreen(name: string): () => void {
    const vm = this._vms.get(name);
    if (!vm) return () => {};
    vm.screenWatchers++;
    if (vm.screenWatchers === 1) vm.worker?.send({ t: 'screen', on: true, graphics: true, full: true });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      vm.screenWatchers--;
      if (vm.screenWatchers === 0) vm.worker?.send({ t: 'screen', on: true, graphics: false });
    };
  }

  /** Text typed at a terminal, turned into key presses. */
  typeText(name: string, bytes: Uint8Array): void {
    this._vms.get(name)?.worker?.send({ t: 'terminal-keys', bytes });
  }

  /** The console output kept for late attachers. */
  consoleBacklog(name: string): Uint8Array {
    const vm = this._get(name);
    return Buffer.concat(vm.console);
  }

  /** The current text screen (all rows), or null before the first frame. */
  currentScreen(name: string): ScreenUpdate | null {
    return this._get(name).screen;
  }

  /** A human-monitor command on a running VM (info registers, savevm TAG, ...). */
  async monitor(name: string, line: string): Promise<string> {
    return this._running(name).t.monitor(line);
  }

  async screenshot(name: string): Promise<Uint8Array> {
    return this._running(name).t.screenshot();
  }

  async stats(name: string): Promise<VmStats> {
    const vm = this._get(name);
    let w: WorkerStats | null = null;
    let ageMs: number | null = null;
    const worker = vm.worker;
    if (worker) {
      // one question at a time per process: a process that cannot answer (stopped, or busy for
      // seconds) is not sent one more for every request meanwhile; its answer serves them all
      let asked = vm.statsAsked?.worker === worker ? vm.statsAsked.answer : null;
      if (!asked) {
        const answer = worker.stats().then(
          (stats) => {
            if (vm.worker === worker) vm.lastStats = { worker, at: Date.now(), stats };
            return stats;
          },
          () => null, // it stopped meanwhile
        );
        vm.statsAsked = { worker, answer };
        void answer.then(() => {
          if (vm.statsAsked?.answer === answer) vm.statsAsked = null;
        });
        asked = answer;
      }
      // never longer than STATS_WAIT_MS, not even before the process's first answer (a process
      // still starting, or stopped before it answered once): then what is known, without figures
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), STATS_WAIT_MS)));
      const got = await Promise.race([asked, late]);
      clearTimeout(timer);
      if (got !== 'late') {
        w = got;
        ageMs = got ? 0 : null;
      } else {
        const last = vm.lastStats?.worker === worker ? vm.lastStats : null;
        if (last) {
          w = last.stats;
          ageMs = Date.now() - last.at;
        }
      }
    }
    return {
      name,
      state: vm.state,
      sampleAgeMs: ageMs,
      guestSeconds: w?.guestSeconds ?? 0,
      guestInstructionsPerSec: Math.round(w?.instructionsPerSec ?? 0),
      hostCpuPercent: Math.round((w?.cpuShare ?? 0) * 1000) / 10,
      hostCpuSeconds: w?.cpuSeconds ?? 0,
      processRssBytes: w?.rssBytes ?? 0, // no run, no process: not the daemon's RSS, which a VM that does not run does not hold
      vmMemoryBytes: w ? w.heapBytes + w.guestRamBytes : 0,
      cpuLimit: w ? w.cpuLimitPercent : vm.record.settings.cpuLimit,
      disks: w?.disks ?? [],
      nics: w?.nics ?? [],
    };
  }

  log(name: string): string {
    this._get(name);
    return this.store.readLog(name);
  }

  /**
   * Fault injection for tests: end a VM's worker as a kill would
   * ('terminate': SIGKILL to its process, or its thread terminated), or make
   * it throw outside the runner ('throw').
   */
  async injectFault(name: string, fault: 'terminate' | 'throw'): Promise<void> {
    const { t } = this._running(name);
    if (fault === 'terminate') await t.terminate();
    else t.send({ t: 'crash', reason: 'injected fault' });
  }

  /** The snapshot tree with the current position (the file's own bookkeeping, such as a revert in progress, stays inside). */
  snapshots(name: string): Pick<SnapshotTree, 'version' | 'current' | 'snapshots'> {
    this._get(name);
    const t = this.store.tree(name);
    return { version: t.version, current: t.current, snapshots: t.snapshots };
  }

  /** Save a snapshot: the whole machine of a running VM (between slices, in its worker), the disks (and suspended state) of a stopped one. */
  async saveSnapshot(name: string, tag: string, description: string): Promise<SnapshotNode> {
    return this._snapshotOp(name, 'save', tag, description, { op: 'save', tag, description }) as Promise<SnapshotNode>;
  }

  /** Go back to a snapshot: a running VM continues from it at once; a stopped one resumes there at its next start. */
  async revertSnapshot(name: string, tag: string): Promise<SnapshotNode> {
    return this._snapshotOp(name, 'revert', tag, '', { op: 'revert', tag }) as Promise<SnapshotNode>;
  }

  async deleteSnapshot(name: string, tag: string): Promise<void> {
    await this._snapshotOp(name, 'delete', tag, '', { op: 'delete', tag });
  }

  /**
   * A snapshot operation: a running VM's in its worker, between slices; a
   * stopped VM's in a job thread (a raw disk's copy can take minutes, and
   * the daemon must answer meanwhile), during which the VM is not started,
   * deleted, cloned or snapshotted again.
   */
  private async _snapshotOp(name: string, op: 'save' | 'revert' | 'delete', tag: string, description: string, running: SnapshotOp): Promise<unknown> {
    const vm = this._getForChange(name);
    if (vm.state === 'starting' || vm.state === 'stopping') throw new HostError('conflict', `VM '${name}' is ${vm.state}; try again in a moment`);
    this._notCloning(name);
    const operation = `snapshot ${op} ${tag}`;
    // a save reports bytes as it goes (a running VM's RAM, a stopped one's disk copies); the rest is one step
    let total = 1;
    if (op !== 'save') this._progress(name, operation, 0, total);
    const step = (d: number, t: number) => {
      total = t;
      if (d < t) this._progress(name, operation, d, t);
    };
    let result: unknown;
    try {
      if (vm.worker) result = await vm.worker.snapshot(running, step);
      else {
        if (op === 'save') this._progress(name, operation, 0, total);
        this._snapshotting.add(name);
        try {
          result = await runFolderJob({ op: 'snapshot', root: this.store.root, name, action: op, tag, description, hold: this.holdJobs ?? undefined }, null, 0, step);
        } finally {
          this._snapshotting.delete(name);
        }
      }
    } catch (e) {
      this._progress(name, operation, total, total); // the bar goes away; the refusal says why
      if (e instanceof StoreError) throw e;
      const msg = (e as Error).message;
      throw new HostError(/has no snapshot/.test(msg) ? 'not-found' : /already has|not a snapshot name/.test(msg) ? 'bad-request' : 'conflict', msg);
    }
    this._progress(name, operation, total, total);
    this.emit('event', { type: 'snapshots', vm: name });
    return result;
  }

  /**
   * A clone of a stopped VM, made in a worker thread with progress events by
   * bytes. A full clone copies the folder; a linked clone's disks are
   * overlays over the source's snapshot `snapshot` (or a new one,
   * `clone-DST`), so only the boot files and a saved state are copied.
   */
  async clone(src: string, dst: string, linked = false, snapshot: string | null = null): Promise<VmInfo> {
    const vm = this._getForChange(src);
    if (vm.worker) throw new HostError('conflict', `VM '${src}' is ${vm.state}; stop it before cloning`);
    const total = linked ? this._linkedCloneBytes(src, snapshot) : treeBytes(this.store.path(src));
    const busy = this._cloning.get(src) ?? { full: 0, linked: 0 };
    if (busy.linked || (linked && busy.full) || this._snapshotting.has(src)) this._notCloning(src);
    this._claim(dst);
    this._cloning.set(src, { ...busy, [linked ? 'linked' : 'full']: busy[linked ? 'linked' : 'full'] + 1 });
    const op = `${linked ? 'linked clone' : 'clone'} of ${src}`;
    try {
      if (total > 0) this._progress(dst, op, 0, total);
      await runFolderJob({ op: 'clone', root: this.store.root, src, dst, linked, snapshot, hold: this.holdJobs ?? undefined }, this._staging(dst), total, (d, t) => this._progress(dst, op, d, t));
      this._progress(dst, op, total, total);
    } finally {
      this._pending.delete(dst);
      const c = this._cloning.get(src) ?? { full: 1, linked: 1 };
      c[linked ? 'linked' : 'full']--;
      if (c.full + c.linked === 0) this._cloning.delete(src);
      else this._cloning.set(src, c);
    }
    const copy = new Vm(this.store.read(dst));
    this._vms.set(dst, copy);
    if (linked) this.emit('event', { type: 'snapshots', vm: src }); // the base snapshot is new or now shared
    else this.store.appendLog(src, `cloned to ${dst}`);
    this.emit('event', { type: 'created', vm: dst });
    return this._info(copy);
  }

  /**
   * Clones in progress by source. A source being cloned is not started,
   * deleted or snapshotted meanwhile (the copy would not be of one state);
   * full clones may run side by side, a linked clone (which saves a snapshot
   * in the source and holds its lock) runs alone.
   */
  private readonly _cloning = new Map<string, { full: number; linked: number }>();

  /** Stopped VMs whose snapshot operation runs in a job thread (_snapshotOp). */
  private readonly _snapshotting = new Set<string>();

  private _notCloning(name: string): void {
    if (this._cloning.has(name)) throw new HostError('conflict', `VM '${name}' is being cloned; try again when the clone is done`);
    if (this._snapshotting.has(name)) throw new HostError('conflict', `VM '${name}' has a snapshot operation under way; try again when it is done`);
  }

  /** What a linked clone copies: the boot files, a CD image, and the base snapshot's saved state (docs/snapshot-format.md). */
  private _linkedCloneBytes(src: string, snapshot: string | null): number {
    const dir = this.store.path(src);
    const cd = this._get(src).record.spec.drives.cdrom?.file;
    let state = join(dir, 'suspended.snap');
    if (snapshot !== null) {
      const node = this.store.tree(src).snapshots.find((n) => n.name === snapshot || n.id === snapshot);
      if (!node) throw new HostError('not-found', `VM '${src}' has no snapshot '${snapshot}'; GET /api/vms/${src}/snapshots lists them`);
      state = node.hasState ? join(dir, 'snapshots', `${node.id}.snap`) : '';
    }
    return treeBytes(join(dir, 'boot')) + (cd ? treeBytes(join(dir, cd)) : 0) + (state ? treeBytes(state) : 0);
  }

  /** The private networks: those networks.json declares and those the VMs' NICs name, by name. */
  listNetworks(): NetworkInfo[] {
    const cfg = this._networkCall(() => this.networks.config());
    const users = new Map<string, string[]>(Object.keys(cfg).map((n) => [n, []]));
    for (const vm of this.list()) for (const n of vm.networks) users.set(n, [...(users.get(n) ?? []), vm.name]);
    return [...users.keys()].sort().map((name) => {
      const dhcp: unknown = cfg[name]?.dhcp;
      return { name, dhcp: typeof dhcp === 'string' ? dhcp : null, vms: users.get(name) ?? [], served: this.networks.served(name) };
    });
  }

  /** Declare a network in networks.json, with a DHCP server or without. */
  createNetwork(name: string, dhcp: string | null): NetworkInfo {
    const taken = this.listNetworks().find((n) => n.name === name);
    if (taken) throw new HostError('conflict', `there is a network '${name}' already${taken.vms.length ? ` (VM ${taken.vms.join(', ')} uses it)` : ''}`);
    this._networkCall(() => this.networks.add(name, dhcp));
    this.emit('event', { type: 'networks' });
    return this.listNetworks().find((n) => n.name === name) as NetworkInfo;
  }

  /** Remove a network no VM uses from networks.json (and stop its switch). */
  async deleteNetwork(name: string): Promise<void> {
    const n = this.listNetworks().find((x) => x.name === name);
    if (!n) throw new HostError('not-found', `there is no network '${name}'`);
    if (n.vms.length) throw new HostError('conflict', `network '${name}' is used by VM ${n.vms.join(', ')}; delete those VMs (or give them another NIC) first`);
    await this._networkCall(() => this.networks.remove(name));
    this.emit('event', { type: 'networks' });
  }

  private _networkCall<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof NetworkConfigError) throw new HostError(e.code, e.message);
      throw e;
    }
  }

  /** Start the VMs marked autostart, and those the daemon suspended at its last shutdown. */
  autostart(): void {
    for (const vm of this._vms.values()) {
      if ((vm.record.settings.autostart || vm.record.settings.resumeOnStart) && !vm.worker) {
        try {
          this._launch(vm);
        } catch (e) {
          this._log(`autostart of '${vm.record.name}' failed: ${(e as Error).message}`);
        }
      }
    }
  }

  /** VMs with a live worker. */
  runningNames(): string[] {
    return [...this._vms.values()].filter((v) => v.worker).map((v) => v.record.name);
  }

  /**
   * The orderly end: press every guest's power button, wait up to `waitMs`
   * for them to power off, then suspend the rest to their folders (the next
   * daemon start resumes them); a VM that cannot be suspended is stopped.
   */
  async shutdown(waitMs: number): Promise<void> {
    for (const vm of this._vms.values()) {
      if (vm.restartTimer) clearTimeout(vm.restartTimer);
      vm.record.settings = { ...vm.record.settings, restart: 'never' };
    }
    const running = [...this._vms.values()].filter((v) => v.worker);
    const ended = running.map((v) => new Promise<void>((r) => (v.worker ? v.worker.once('exit', () => r()) : r())));
    for (const vm of running) {
      this._log(`asking '${vm.record.name}' to power off (ACPI power button)`);
      this.powerdown(vm.record.name);
    }
    const all = Promise.all(ended);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    for (const vm of running) if (!vm.worker) this._log(`'${vm.record.name}' powered off (${vm.reason ?? 'stopped'})`);
    await Promise.all(
      running.map(async (vm) => {
        const t = vm.worker;
        if (!t) return;
        const name = vm.record.name;
        this._log(`'${name}' did not power off within ${waitMs / 1000} s; suspending it to its folder`);
        vm.stopRequested = true;
        this._setState(vm, 'stopping', 'suspending');
        try {
          await t.suspend();
          vm.record.settings = { ...vm.record.settings, resumeOnStart: true };
          this.store.updateSettings(name, vm.record.settings);
          this._log(`'${name}' suspended; the next daemon start resumes it`);
        } catch (e) {
          this._log(`'${name}' could not be suspended (${(e as Error).message}); stopping it`);
          if (vm.worker) this.stop(name);
        }
      }),
    );
    await all;
    await this.networks.close();
  }
}

/** Apply a screen update to the screen kept for late clients. */
function mergeScreen(prev: ScreenUpdate | null, u: ScreenUpdate): ScreenUpdate {
  if (!prev || prev.mode !== u.mode || prev.cols !== u.cols || prev.rows !== u.rows || prev.width !== u.width || prev.height !== u.height) return { ...u, changed: [...u.changed], tiles: [...u.tiles] };
  const rows = new Map(prev.changed.map((r) => [r.row, r]));
  for (const r of u.changed) rows.set(r.row, r);
  // tiles sit on a fixed grid: the latest at each place is the picture
  const tiles = new Map(prev.tiles.map((t) => [`${t.x},${t.y}`, t]));
  for (const t of u.tiles) tiles.set(`${t.x},${t.y}`, t);
  return { ...u, changed: [...rows.values()].sort((a, b) => a.row - b.row), tiles: [...tiles.values()] };
}

/** The private networks a spec's NICs are on. */
function specNetworks(spec: MachineSpec): string[] {
  const out: string[] = [];
  for (const n of spec.nics ?? []) if (n.net === 'switch' && n.network !== undefined && !out.includes(n.network)) out.push(n.network);
  return out;
}

/** The host files a spec names (copied into a new folder): firmware, kernel, initrd, disk images. */
function specFiles(spec: MachineSpec): string[] {
  const out: string[] = [];
  if (spec.bios && spec.bios !== 'seabios') out.push(spec.bios);
  if (spec.vgaBios && spec.vgaBios !== 'seabios') out.push(spec.vgaBios);
  if (spec.linux) out.push(...[spec.linux.kernel, spec.linux.vmlinux, spec.linux.initrd].filter((f): f is string => typeof f === 'string'));
  for (const d of Object.values(spec.drives)) if (d) out.push(d.file);
  for (const v of spec.virtio ?? []) if (v.type === 'blk') out.push(v.file);
  return out;
}

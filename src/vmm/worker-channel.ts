/**
 * The channel between a VM worker (vm-worker.ts, which owns the machine) and
 * its owner (worker-handle.ts, in the daemon), over either transport:
 *
 * - 'thread': a node:worker_threads Worker in the daemon's process; messages
 *   are structured clones (byte arrays transferred);
 * - 'process': a child Node process (vm-process.ts) forked with an IPC
 *   channel in 'advanced' serialization, which is the same structured clone
 *   (V8's serializer: typed arrays, nested objects) written to a pipe.
 *
 * Both carry the messages of thread-protocol.ts unchanged, so neither end
 * knows which one it has. Nothing in the protocol shares memory (no
 * SharedArrayBuffer): screenshots and screen tiles are PNG bytes in the
 * message, snapshots and suspends are written to the VM folder by the
 * worker and only their progress and result travel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker, WorkerInit } from './thread-protocol.js';

/** Where a daemon runs each VM: in a child process of its own (the default), or in a worker thread of the daemon. */
export type Isolation = 'process' | 'thread';
export const ISOLATIONS: readonly Isolation[] = ['process', 'thread'];

/** The environment variable that carries a process worker's WorkerInit (JSON). */
const INIT_ENV = 'TSVM_VM_INIT';

// ---------------------------------------------------------------- the worker's end

/** The worker's end: its start-up data, messages both ways, and its own end. */
export interface WorkerEnd {
  readonly isolation: Isolation;
  readonly init: WorkerInit;
  post(m: FromWorker, transfer?: ArrayBuffer[]): void;
  onMessage(f: (m: ToWorker) => void): void;
  /** The owner went away (a process worker's daemon died, even by SIGKILL): end the run. */
  onOwnerGone(f: () => void): void;
  /** Deliver what was posted, then close the channel: the worker ends once its run has. */
  close(): void;
  /** Deliver what was posted, then end the worker with `code`. */
  exit(code: number): Promise<never>;
}

/** The worker's end inside a worker thread. */
export function threadEnd(): WorkerEnd {
  const port = parentPort;
  if (!port) throw new Error('this module runs only as a worker thread');
  return {
    isolation: 'thread',
    init: workerData as WorkerInit,
    post: (m, transfer) => port.postMessage(m, transfer),
    onMessage: (f) => port.on('message', f),
    onOwnerGone: () => {}, // the owner is this process: it cannot go without the thread
    close: () => port.close(),
    exit: (code) => process.exit(code), // ends this thread
  };
}

/** The worker's end inside a child process forked by processOwner(). */
export function processEnd(): WorkerEnd {
  const send = process.send?.bind(process);
  const raw = process.env[INIT_ENV];
  if (!send || raw === undefined) throw new Error('this module runs only as a VM process the daemon forks');
  delete process.env[INIT_ENV];
  const init = JSON.parse(raw) as WorkerInit;
  // messages still on their way; the process may only end once they are written
  let pending = 0;
  let drained: (() => void) | null = null;
  const flushed = () =>
    new Promise<void>((r) => {
      if (pending === 0 || !process.connected) r();
      else drained = r;
    });
  const post = (m: FromWorker) => {
    if (!process.connected) return;
    pending++;
    send(m, undefined, undefined, () => {
      if (--pending === 0 && drained) {
        const d = drained;
        drained = null;
        d();
      }
    });
  };
  const exit = async (code: number): Promise<never> => {
    await flushed();
    process.exit(code);
  };
  // an exception that escapes the runner ends this VM alone; the owner hears what it was
  process.on('uncaughtException', (e) => {
    post({ t: 'failed', error: e instanceof Error ? e.message : String(e) });
    void exit(70);
  });
  // Ctrl-C on the daemon's terminal reaches its whole process group: the daemon decides what its VMs do
  process.on('SIGINT', () => {});
  return {
    isolation: 'process',
    init,
    post,
    onMessage: (f) => process.on('message', (m) => f(m as ToWorker)),
    onOwnerGone: (f) => process.on('disconnect', f),
    close: () => void flushed().then(() => process.exit(0)),
    exit,
  };
}

// ---------------------------------------------------------------- the owner's end

/** The owner's end: messages both ways, one 'end' with what ended the worker, and a kill. */
export interface OwnerEnd {
  readonly isolation: Isolation;
  /** The VM process's pid, or null for a thread. */
  readonly pid: number | null;
  /** For logs: "worker thread 3", "process 12345". */
  readonly label: string;
  post(m: ToWorker, transfer?: ArrayBuffer[]): void;
  onMessage(f: (m: FromWorker) => void): void;
  /**
   * Called once, after the last message: `reason` says what ended the
   * worker when it did not end in order (a kill, running out of memory, an
   * exit without a 'stopped' message).
   */
  onEnd(f: (reason: string) => void): void;
  /** End the worker now (SIGKILL for a process); resolves when it has ended. */
  kill(): Promise<void>;
}

export interface OwnerOptions {
  init: WorkerInit;
  /** The worker's JS heap limit (MiB). */
  heapLimitMb: number;
  /**
   * Where a VM process's standard error goes, a line at a time (the last
   * one, unterminated, as the process ends): the VM's log, in the daemon.
   * Without it, the daemon's own standard error.
   */
  onStderrLine?: (line: string) => void;
  /**
   * How many nice steps below the daemon a VM process runs (0..19; the
   * result is capped at 19, the lowest priority): see VM_NICENESS. Not
   * applied to a thread.
   */
  niceness?: number;
}

/**
 * The default of OwnerOptions.niceness: a VM process runs 10 nice steps
 * below the daemon, so that when the VMs saturate the cores the scheduler
 * still runs the daemon (the API, the consoles, the web UI) when it has work.
 */
export const VM_NICENESS = 10;
/** The lowest priority Linux gives (the highest nice value). */
const NICE_MAX = 19;

/**
 * Lower a process's priority to nice `target`, every thread of it: on
 * Linux the nice value is a thread's, and setpriority() on a pid changes
 * its main thread alone, while Node starts its V8 platform threads (the
 * optimising and WebAssembly compilers, the GC helpers), which do much of
 * a booting VM's work, before any JS runs. Threads created afterwards
 * inherit the value of the thread that creates them. Returns the error's
 * message when the main thread could not be changed (the process is gone).
 */
export function renice(pid: number, target: number): string | null {
  try {
    setPriority(pid, target);
  } catch (e) {
    return (e as Error).message;
  }
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null; // not Linux (no per-thread values to mend), or gone meanwhile
  }
  for (const tid of tids) {
    try {
      if (Number(tid) !== pid && getPriority(Number(tid)) < target) setPriority(Number(tid), target);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return null;
}

/** A worker thread in this process. */
export function threadOwner(o: OwnerOptions): OwnerEnd {
  const worker = new Worker(new URL('./thread-worker.js', import.meta.url), {
    workerData: o.init,
    resourceLimits: { maxOldGenerationSizeMb: o.heapLimitMb },
    stdout: false,
    stderr: false,
  });
  let failure: string | null = null;
  worker.on('error', (e: Error & { code?: string }) => {
    failure ??= e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `out of memory (worker heap limit ${o.heapLimitMb} MiB)` : `the VM thread failed: ${e.message}`;
  });
  return {
    isolation: 'thread',
    pid: null,
    label: `worker thread ${worker.threadId}`,
    post: (m, transfer) => worker.postMessage(m, transfer),
    onMessage: (f) => worker.on('message', f),
    onEnd: (f) => worker.on('exit', (code) => f(failure ?? (code === 1 ? 'the VM thread was terminated' : `the VM thread exited with code ${code}`))),
    kill: async () => {
      await worker.terminate();
    },
  };
}

/**
 * Node options of the daemon that load or resolve code, and so must reach a
 * VM process too: a coverage or instrumentation preload given to the daemon
 * (`node --import ./hook.mjs bin/tsvm.js serve`) would otherwise see the
 * daemon but never a VM. Each takes a value, as the next entry or after '='.
 */
const PRELOAD_FLAGS_WITH_VALUE = ['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C'];
/** ... and those without a value. */
const PRELOAD_FLAGS = ['--enable-source-maps'];

/**
 * The entries of a Node process's execArgv that a VM process gets too: the
 * preload and resolution flags above, in order, with their values. The rest
 * stays with the daemon: its V8 and heap flags (the VM process has its own
 * heap limit), inspector ports (a second process would collide on them), and
 * the like. NODE_OPTIONS needs nothing: the VM process inherits the
 * daemon's environment, and Node reads it again there.
 */
export function preloadExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (PRELOAD_FLAGS.includes(a)) out.push(a);
    else if (PRELOAD_FLAGS_WITH_VALUE.includes(flag)) {
      if (flag !== a) out.push(a); // --import=./hook.mjs
      else if (i + 1 < argv.length) out.push(a, argv[++i]); // --import ./hook.mjs
    }
  }
  return out;
}

/** The last this many characters of a VM process's standard error are kept for the reason it ended. */
const STDERR_TAIL = 4096;

/**
 * A child Node process running vm-process.ts, with its JS heap capped at
 * the VM's heap limit and the daemon's preloads (preloadExecArgv). Its
 * standard output goes on to the daemon's; its standard error, which holds
 * what V8 prints as it dies (a fatal out-of-memory's message, its last GCs
 * and both stacks), goes to `onStderrLine` (the VM's log), and its tail
 * names what killed it.
 */
export function processOwner(o: OwnerOptions): OwnerEnd {
  const child: ChildProcess = fork(fileURLToPath(new URL('./vm-process.js', import.meta.url)), [], {
    execArgv: [...preloadExecArgv(process.execArgv), `--max-old-space-size=${o.heapLimitMb}`],
    // two glibc malloc arenas, not one per thread: V8's worker threads each
    // keep what their compiles used in an arena of their own (about 170 MiB
    // of RSS after a busy workload, docs/cpu-jit.md, "Hot regions")
    env: { MALLOC_ARENA_MAX: '2', ...process.env, [INIT_ENV]: JSON.stringify(o.init) },
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  let partial = ''; // a line of standard error not yet ended
  const toLines = o.onStderrLine;
  child.stdout?.on('data', (b: Buffer) => process.stdout.write(b));
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
    if (!toLines) {
      process.stderr.write(text);
      return;
    }
    const lines = (partial + text).split('\n');
    partial = lines.pop() as string;
    for (const l of lines) toLines(l);
  });
  child.stderr?.on('end', () => {
    if (toLines && partial) toLines(partial);
    partial = '';
  });
  let killed = false;
  let spawnError: string | null = null;
  child.on('error', (e) => {
    spawnError ??= e.message; // it could not be started, or a message could not be sent to it
  });
  // below the daemon's priority (its main thread's nice value, which its children inherit): once
  // now, and again at its first message, when Node has surely started all of its platform threads
  const niceness = o.niceness ?? VM_NICENESS;
  if (child.pid !== undefined && niceness > 0) {
    const pid = child.pid;
    const target = Math.min(NICE_MAX, getPriority() + niceness);
    const lower = () => {
      const err = renice(pid, target);
      if (err !== null && child.exitCode === null && child.signalCode === null) process.stderr.write(`tsvm: cannot lower the priority of VM process ${pid} to nice ${target}: ${err}\n`);
    };
    lower();
    child.once('message', lower);
  }
  const ended = new Promise<void>((r) => child.once('close', () => r()));
  const reason = (code: number | null, signal: NodeJS.Signals | null): string => {
    if (/heap out of memory|Reached heap limit/.test(stderr)) return `out of memory (process heap limit ${o.heapLimitMb} MiB)`;
    if (killed) return `the VM process was terminated (${signal ?? `exit code ${code}`})`;
    if (signal) return `the VM process was killed by ${signal}`;
    if (spawnError !== null && code === null) return `the VM process could not start: ${spawnError}`;
    const last = stderr.trim().split('\n').slice(-3).join(' / ');
    return `the VM process exited with code ${code}${last ? `: ${last}` : ''}`;
  };
  return {
    isolation: 'process',
    pid: child.pid ?? null,
    label: `process ${child.pid ?? '(not started)'}`,
    post: (m) => {
      if (child.connected) child.send(m);
    },
    onMessage: (f) => child.on('message', (m) => f(m as FromWorker)),
    // 'close' comes after the IPC channel and the pipes closed: every message has arrived
    onEnd: (f) => child.once('close', (code, signal) => f(reason(code, signal))),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
      await ended;
    },
  };
}

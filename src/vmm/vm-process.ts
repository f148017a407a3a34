/**
 * The entry of a VM's child process (isolation 'process', the daemon's
 * default): the VM worker (vm-worker.ts) over the IPC channel to the daemon
 * that forked it (worker-channel.ts). Its JS heap is capped by the daemon
 * (--max-old-space-size); it ends when its run does, and when the daemon
 * goes away.
 */
import './v8flags.js'; // first: before any WebAssembly is compiled
import './cpuclock.js'; // compile times in CPU time (info jit)
import { runVmWorker } from './vm-worker.js';
import { processEnd } from './worker-channel.js';

await runVmWorker(processEnd());

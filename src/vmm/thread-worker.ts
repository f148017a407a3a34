/**
 * The entry of a VM's worker thread (isolation 'thread'): the VM worker
 * (vm-worker.ts) over the thread's message port.
 */
import './v8flags.js'; // first: before any WebAssembly is compiled
import './cpuclock.js'; // compile times in CPU time (info jit)
import { runVmWorker } from './vm-worker.js';
import { threadEnd } from './worker-channel.js';

await runVmWorker(threadEnd());

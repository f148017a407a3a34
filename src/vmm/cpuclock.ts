/**
 * The JIT's compile clock (src/jit/wasm/host.ts compileClock) as CPU time of
 * the compiling thread, on Linux: the first field of
 * /proc/thread-self/schedstat (nanoseconds on a CPU), read through a file
 * descriptor opened in that thread (this module is loaded once per thread, as
 * the VM worker and the CLI each import it), about 7 us a read. Wall time
 * would charge a compile with the time a loaded host kept the process off
 * the CPU. Elsewhere the clock stays wall time.
 */
import { openSync, readSync } from 'node:fs';
import { compileClock } from '../jit/wasm/host.js';

let fd = -1;
const buf = Buffer.alloc(64);

function threadCpuMs(): number {
  const n = readSync(fd, buf, 0, buf.length, 0);
  return Number(buf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
}

try {
  fd = openSync('/proc/thread-self/schedstat', 'r');
  if (Number.isFinite(threadCpuMs())) {
    compileClock.now = threadCpuMs;
    compileClock.cpu = true;
  }
} catch {
  // no /proc: keep wall time
}

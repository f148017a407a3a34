/** `tsvm run`: build a machine from QEMU-style options and run it. */
import { readFileSync, statSync } from 'node:fs';
import { parseSize } from '../base/hex.js';
import { formatCpuState } from '../board/dump.js';
import { Machine, MachineConfigError, MAX_BIOS_BYTES } from '../board/machine.js';
import { MemoryConfigError } from '../bus/memory.js';
import { CharSpecError, openCharSink, type HostCharSink } from '../host/node/chardev.js';
import { formatHelp, parseOptions, UsageError, type OptionSpec } from './options.js';

export const RUN_OPTIONS: OptionSpec[] = [
  { name: 'bios', value: 'FILE', help: 'firmware ROM image, mapped at the top of 4 GiB and its last 128 KiB below 1 MiB' },
  { name: 'm', value: 'SIZE', help: 'guest RAM, e.g. 1M, 16M, 256M (no suffix: MiB; default 32M)' },
  { name: 'debugcon', value: 'DEV', help: 'where bytes written to port 0xE9 go: stdio, file:PATH or none (default none)' },
  { name: 'postcodes', value: 'DEV', help: 'where POST codes written to port 0x80 go, one hex code per line: stdio, file:PATH or none' },
  { name: 'timeout', value: 'SECONDS', help: 'stop the VM after this many seconds of wall time (exit status 3)' },
  { name: 'd', value: 'ITEMS', help: "debug output on stderr; 'cpu' prints the final registers" },
  { name: 'help', value: null, help: 'show this help' },
];

const USAGE = `Usage: tsvm run [options]

Runs a virtual PC until it halts with interrupts disabled (exit status 0),
triple-faults (exit status 2) or reaches -timeout (exit status 3).`;

/** Instructions per slice between checks of the wall clock and output flushes. */
const SLICE = 1_000_000;

export function runCommand(args: string[]): number {
  const opts = parseOptions(args, RUN_OPTIONS, 'run');
  if (opts.has('help')) {
    process.stdout.write(formatHelp(USAGE, RUN_OPTIONS));
    return 0;
  }
  const one = (n: string) => opts.get(n)?.[0];

  const memText = one('m') ?? '32M';
  const memoryBytes = parseSize(memText);
  if (memoryBytes === undefined) throw new UsageError(`run: -m '${memText}' is not a size; write it like 16M or 1G`);

  const biosPath = one('bios');
  if (!biosPath) throw new UsageError("run: no firmware given; pass -bios FILE (a raw ROM image)");
  const bios = readBios(biosPath);

  let timeoutMs = Infinity;
  const t = one('timeout');
  if (t !== undefined) {
    const s = Number(t);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`run: -timeout '${t}' is not a positive number of seconds`);
    timeoutMs = s * 1000;
  }
  const debugItems = (one('d') ?? '').split(',').filter(Boolean);
  for (const d of debugItems) {
    if (d !== 'cpu') throw new UsageError(`run: -d '${d}' is not known; the debug items are: cpu`);
  }

  const sinks: HostCharSink[] = [];
  const open = (name: string) => {
    const spec = one(name);
    if (spec === undefined) return undefined;
    const s = openCharSink(spec, `-${name}`);
    sinks.push(s);
    return s;
  };
  const debugcon = open('debugcon');
  const postcodes = open('postcodes');

  let machine: Machine;
  try {
    machine = new Machine({ memoryBytes, bios, debugcon, postcodes });
  } catch (e) {
    if (e instanceof MachineConfigError || e instanceof MemoryConfigError) throw new UsageError(`run: ${e.message}`);
    throw e;
  }

  const start = Date.now();
  let status = 0;
  try {
    for (;;) {
      const reason = machine.runSlice(SLICE);
      for (const s of sinks) s.flush();
      if (reason === 'halt') break;
      if (reason === 'triple-fault') {
        process.stderr.write(`tsvm: triple fault (${machine.tripleFaultChain}); the virtual CPU shut down\n`);
        status = 2;
        break;
      }
      if (Date.now() - start > timeoutMs) {
        process.stderr.write(`tsvm: timeout after ${timeoutMs / 1000} s; stopping the VM\n`);
        status = 3;
        break;
      }
    }
  } finally {
    for (const s of sinks) s.close();
  }
  if (debugItems.includes('cpu')) process.stderr.write(formatCpuState(machine.cpu) + '\n');
  return status;
}

function readBios(path: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`run: -bios ${path} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`run: cannot read BIOS image ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size === 0) throw new UsageError(`run: BIOS image ${path} is empty`);
  if (size > MAX_BIOS_BYTES) {
    throw new UsageError(`run: BIOS image ${path} is ${size} bytes, larger than the 16 MiB a PC maps for firmware`);
  }
  return new Uint8Array(readFileSync(path));
}

export { CharSpecError };

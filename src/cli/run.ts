/** `tsvm run`: build a PC from QEMU-style options and run it. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseSize } from '../base/hex.js';
import { Machine, MachineConfigError, MAX_BIOS_BYTES, type MachineConfig, type StopReason } from '../board/machine.js';
import { LinuxBootError } from '../board/linuxboot.js';
import { MemoryConfigError } from '../bus/memory.js';
import { formatCpuState } from '../board/dump.js';
import { openCharSink, type HostCharSink } from '../host/node/chardev.js';
import { TerminalConsole } from '../host/node/console.js';
import { TerminalScreen, typeTerminalBytes, writeScreendump } from '../host/node/textscreen.js';
import { runMonitorCommand } from './monitor.js';
import { formatHelp, parseOptions, UsageError, type OptionSpec, type Parsed } from './options.js';
import { buildDefaultImage, findDefaultImage, ImageError } from '../vmm/image.js';
import { StatusLine } from './status.js';
import { rtcStartSeconds } from './rtc.js';
import { BlockBackendError, openBlockFile, type OpenedBlock } from '../host/node/block.js';
import { openVirtio, VIRTIO_OPTIONS } from './virtio.js';

export const SEABIOS_DIR = '/usr/share/seabios';
export const DEFAULT_BIOS = `${SEABIOS_DIR}/bios-256k.bin`;
export const DEFAULT_VGA_BIOS = `${SEABIOS_DIR}/vgabios-stdvga.bin`;

export const RUN_OPTIONS: OptionSpec[] = [
  { name: 'm', value: 'SIZE', help: 'guest RAM, e.g. 16M, 256M, 1G (no suffix: MiB; default 128M)' },
  { name: 'bios', value: 'FILE', help: `firmware ROM, mapped at the top of 4 GiB and its last 128 KiB below 1 MiB (default: Debian's SeaBIOS, ${DEFAULT_BIOS})` },
  { name: 'kernel', value: 'FILE', help: 'boot this Linux bzImage directly (32-bit boot protocol; no firmware unless -bios is also given)' },
  { name: 'initrd', value: 'FILE', help: 'initial ramdisk for -kernel' },
  { name: 'append', value: 'CMDLINE', help: 'kernel command line for -kernel' },
  { name: 'hda', value: 'FILE', help: 'raw disk image as the primary IDE master (opened read-write)' },
  { name: 'hdb', value: 'FILE', help: 'raw disk image as the primary IDE slave' },
  { name: 'cdrom', value: 'FILE', help: 'ISO image in the ATAPI CD-ROM drive (secondary master)' },
  { name: 'rtc', value: 'base=utc|localtime|DATE', help: "where the guest's clock starts: the host's time in UTC (default), in local time, or a fixed date (2024-05-01 or 2024-05-01T12:30:00) for reproducible runs; it then advances with guest time" },
  { name: 'boot', value: 'ORDER', help: "firmware boot order: c (hard disk), d (CD-ROM), e.g. 'd' or 'cd' (default cd)" },
  { name: 'snapshot', value: null, help: 'open disk images read-only and keep the guest\'s writes aside, discarded at exit' },
  { name: 'serial', value: 'DEV', help: 'COM1: stdio, file:PATH or none (default stdio)' },
  { name: 'display', value: 'TYPE', help: 'none (default), or curses: the VGA text screen drawn in this terminal, keys typed to the PS/2 keyboard' },
  { name: 'screendump', value: 'PATH', help: 'when the VM stops, write the screen to PATH: a PNG image if it ends in .png, else the text rows' },
  { name: 'nographic', value: null, help: 'no display; serial port and monitor on the terminal (Ctrl-A X quits, Ctrl-A C monitor)' },
  { name: 'debugcon', value: 'DEV', help: "the debug console (ports 0xE9 and 0x402, where SeaBIOS logs): stdio, file:PATH or none" },
  { name: 'postcodes', value: 'DEV', help: 'where POST codes written to port 0x80 go, one hex code per line' },
  { name: 'no-reboot', value: null, help: 'exit instead of rebooting when the guest resets' },
  { name: 'run-for', value: 'SECONDS', help: 'stop the VM after this much guest (virtual) time; deterministic, for scripts and tests (exit status 0)' },
  { name: 'timeout', value: 'SECONDS', help: 'stop the VM after this many seconds of wall time (exit status 3)' },
  { name: 'd', value: 'ITEMS', help: "debug output on stderr; 'cpu' prints the final registers" },
  ...VIRTIO_OPTIONS,
  { name: 'help', value: null, help: 'show this help' },
];

const USAGE = `Usage: tsvm run [options]

With no options, boots the default guest (Debian's i386 Linux kernel and
busybox, built from Debian packages on first use) to a shell on this terminal.
Ctrl-A X quits; Ctrl-A C opens the monitor.

Exit status: 0 when the guest powers off or halts with interrupts disabled,
2 on a triple fault, 3 on -timeout, 1 for bad options or files.`;

/** Host time between checks for input, output flushes and the timeout. */
const TICK_MS = 15;
/** How far guest time may run ahead of wall time while the guest idles. */
const MAX_AHEAD_NS = 10e6;

function readImage(path: string, what: string, max = Infinity): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`run: ${what} ${path} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`run: cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size === 0) throw new UsageError(`run: ${what} ${path} is empty`);
  if (size > max) throw new UsageError(`run: ${what} ${path} is ${size} bytes, larger than the ${max / 1048576} MiB a PC maps for firmware`);
  return new Uint8Array(readFileSync(path));
}

function seabiosFile(path: string, what: string): Uint8Array {
  if (!existsSync(path)) {
    throw new UsageError(`run: ${what} ${path} is missing; install Debian's seabios package (sudo apt-get install seabios) or pass -bios FILE`);
  }
  return readImage(path, what, MAX_BIOS_BYTES);
}

export async function runCommand(args: string[]): Promise<number> {
  const opts = parseOptions(args, RUN_OPTIONS, 'run');
  if (opts.has('help')) {
    process.stdout.write(formatHelp(USAGE, RUN_OPTIONS));
    return 0;
  }
  const useDefaultGuest = !opts.has('kernel') && !opts.has('bios') && !opts.has('hda') && !opts.has('hdb') && !opts.has('cdrom');
  return runWith(opts, useDefaultGuest);
}

async function runWith(opts: Parsed, defaultGuest: boolean): Promise<number> {
  const one = (n: string) => opts.get(n)?.[0];
  const status = new StatusLine(process.stderr);

  const memText = one('m') ?? '128M';
  const memoryBytes = parseSize(memText);
  if (memoryBytes === undefined) throw new UsageError(`run: -m '${memText}' is not a size; write it like 256M or 1G`);

  let timeoutMs = Infinity;
  const t = one('timeout');
  if (t !== undefined) {
    const s = Number(t);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`run: -timeout '${t}' is not a positive number of seconds`);
    timeoutMs = s * 1000;
  }
  let runForNs = Infinity;
  const rf = one('run-for');
  if (rf !== undefined) {
    const s = Number(rf);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`run: -run-for '${rf}' is not a positive number of seconds`);
    runForNs = s * 1e9;
  }
  const debugItems = (one('d') ?? '').split(',').filter(Boolean);
  for (const d of debugItems) if (d !== 'cpu') throw new UsageError(`run: -d '${d}' is not known; the debug items are: cpu`);

  const cfg: MachineConfig = { memoryBytes, rtcEpochSec: rtcStartSeconds(one('rtc'), Date.now(), -new Date().getTimezoneOffset()) };
  let bootLabel = 'firmware';
  if (defaultGuest) {
    let img = findDefaultImage();
    if (!img) {
      status.show('building the default guest image from Debian packages (first run only)');
      try {
        img = buildDefaultImage((m) => status.show(m));
      } catch (e) {
        status.clear();
        if (e instanceof ImageError) throw new UsageError(`the default guest could not be built: ${e.message}`);
        throw e;
      }
      status.done(`default guest built (Linux ${img.kernelVersion})`);
    }
    cfg.linux = {
      kernel: readImage(img.kernel, 'kernel'),
      vmlinux: readImage(img.vmlinux, 'kernel'),
      initrd: readImage(img.initrd, 'initrd'),
      cmdline: one('append') ?? img.cmdline,
    };
    bootLabel = `Linux ${img.kernelVersion}`;
  } else {
    const kernel = one('kernel');
    if (kernel) {
      const initrd = one('initrd');
      cfg.linux = { kernel: readImage(kernel, 'kernel'), initrd: initrd ? readImage(initrd, 'initrd') : undefined, cmdline: one('append') ?? '' };
      bootLabel = 'Linux';
    } else if (opts.has('initrd') || opts.has('append')) {
      throw new UsageError('run: -initrd and -append need -kernel');
    }
    const bios = one('bios');
    if (bios) {
      cfg.bios = readImage(bios, 'BIOS image', MAX_BIOS_BYTES);
    } else if (!kernel) {
      cfg.bios = seabiosFile(DEFAULT_BIOS, 'the default BIOS');
    }
    // the VGA card's option ROM, as QEMU's -vga std carries it (whatever the system firmware)
    if (cfg.bios) {
      if (!bios) cfg.vgaBios = seabiosFile(DEFAULT_VGA_BIOS, 'the VGA BIOS');
      else if (existsSync(DEFAULT_VGA_BIOS)) cfg.vgaBios = readImage(DEFAULT_VGA_BIOS, 'the VGA BIOS');
    }
  }

  const boot = one('boot');
  if (boot !== undefined && !/^[acd]+$/.test(boot)) throw new UsageError(`run: -boot '${boot}' is not a boot order; use letters c (hard disk) and d (CD-ROM), e.g. -boot d`);
  cfg.boot = boot ?? 'cd';
  const disks: OpenedBlock[] = [];
  const openDisk = (name: 'hda' | 'hdb' | 'cdrom') => {
    const path = one(name);
    if (path === undefined) return undefined;
    try {
      const d = openBlockFile(path, opts.has('snapshot') ? 'snapshot' : name === 'cdrom' ? 'ro' : 'rw', `-${name}`);
      if (d.warning) process.stderr.write(`tsvm: ${d.warning}\n`);
      disks.push(d);
      return d.backend;
    } catch (e) {
      if (e instanceof BlockBackendError) throw new UsageError(`run: ${e.message}`);
      throw e;
    }
  };
  cfg.hda = openDisk('hda');
  cfg.hdb = openDisk('hdb');
  cfg.cdrom = openDisk('cdrom');

  const virtio = openVirtio(opts, { snapshot: opts.has('snapshot') });
  cfg.virtio = virtio.devices;

  const sinks: HostCharSink[] = [];
  const open = (name: string, spec?: string) => {
    const s0 = spec ?? one(name);
    if (s0 === undefined) return undefined;
    const s = openCharSink(s0, `-${name}`);
    sinks.push(s);
    return s;
  };
  const display = one('display') ?? 'none';
  if (display !== 'none' && display !== 'curses') throw new UsageError(`run: -display '${display}' is not known; use none or curses`);
  if (display === 'curses' && opts.has('nographic')) throw new UsageError('run: -display curses and -nographic contradict each other; pick one');
  const curses = display === 'curses';
  const serialSpec = one('serial') ?? (curses ? 'none' : 'stdio');
  if (curses && serialSpec === 'stdio') throw new UsageError('run: -display curses uses the terminal; send -serial to a file (file:PATH) or none');
  const screendump = one('screendump');
  const serial = open('serial', serialSpec);
  cfg.serial = [serial];
  cfg.debugcon = open('debugcon');
  cfg.postcodes = open('postcodes');

  let machine: Machine;
  try {
    machine = new Machine(cfg);
  } catch (e) {
    if (e instanceof MachineConfigError || e instanceof MemoryConfigError || e instanceof LinuxBootError) throw new UsageError(`run: ${e.message}`);
    throw e;
  }

  // the terminal: serial input from stdin, Ctrl-A escapes, the monitor
  let quit = false;
  const interactive = serialSpec === 'stdio' || curses;
  const screen = curses ? new TerminalScreen() : null;
  const term = interactive
    ? new TerminalConsole({
        toGuest: (b) => (curses ? typeTerminalBytes(machine.keyboard, b) : machine.serial[0].receive(b)),
        quit: () => (quit = true),
        monitorLine: (line) => {
          const r = runMonitorCommand(machine, line);
          if (r.output) term?.print(r.output + '\n');
          if (r.quit) quit = true;
        },
      })
    : null;
  let guestSpoke = false;
  if (serial) {
    const w = serial.write.bind(serial);
    serial.write = (b: number) => {
      if (!guestSpoke) {
        guestSpoke = true;
        status.clear();
      }
      w(b);
    };
  }

  const noReboot = opts.has('no-reboot');
  const start = Date.now();
  const startNs = machine.clock.nowNs;
  let exit = 0;
  let reason: StopReason | 'timeout' | 'quit' | 'reset' = 'running';
  term?.start();
  try {
    for (;;) {
      const tickEnd = Date.now() + TICK_MS;
      let resets = 0;
      while (Date.now() < tickEnd && !quit) {
        const before = machine.resets;
        const r = machine.runSlice(200_000);
        resets += machine.resets - before;
        if (r !== 'running' || machine.clock.nowNs - startNs >= runForNs) break;
        if (machine.cpu.halted && machine.clock.nowNs - startNs > (Date.now() - start) * 1e6 + MAX_AHEAD_NS) break;
      }
      for (const s of sinks) s.flush();
      if (screen && !term?.inMonitor) {
        if (machine.vga.displayMode() === 'text') screen.draw(machine.vga.renderText());
      }
      if (quit) {
        reason = 'quit';
        break;
      }
      if (noReboot && resets > 0) {
        reason = 'reset';
        break;
      }
      if (machine.stopReason !== 'running') {
        reason = machine.stopReason;
        break;
      }
      if (machine.clock.nowNs - startNs >= runForNs) {
        reason = 'quit';
        break;
      }
      const wall = Date.now() - start;
      if (wall > timeoutMs) {
        reason = 'timeout';
        break;
      }
      if (!guestSpoke && !curses && !status.silent) status.show(`booting ${bootLabel} ... ${(wall / 1000).toFixed(1)} s  (Ctrl-A X quits)`);
      // pace an idle guest to wall time; yield to the event loop for input either way
      const aheadMs = (machine.clock.nowNs - startNs) / 1e6 - (Date.now() - start);
      await new Promise((r) => setTimeout(r, aheadMs > 1 ? Math.min(aheadMs, 50) : 0));
    }
  } finally {
    term?.stop();
    screen?.close();
    status.clear();
    if (screendump) writeScreendump(screendump, machine.vga);
    for (const s of sinks) s.close();
    for (const d of disks) d.close();
    virtio.close();
  }
  switch (reason) {
    case 'triple-fault':
      process.stderr.write(`tsvm: triple fault (${machine.tripleFaultChain}); the virtual CPU shut down\n`);
      exit = 2;
      break;
    case 'timeout':
      process.stderr.write(`tsvm: timeout after ${timeoutMs / 1000} s; stopping the VM\n`);
      exit = 3;
      break;
    default:
      exit = 0;
  }
  if (debugItems.includes('cpu')) process.stderr.write(formatCpuState(machine.cpu) + '\n');
  return exit;
}

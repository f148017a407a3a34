/** `tsvm run`: a machine spec from QEMU-style options, run by the VM runner. */
import { resolve } from 'node:path';
import { parseSize, VmConfigError, type MachineSpec, type DriveSlot } from '../vmm/spec.js';
import { AccelError, createRunner, parseAccel, SEABIOS_BIOS as DEFAULT_BIOS, seabiosVgaInstalled, type AccelConfig } from '../vmm/resources.js';
import { runMonitorCommand } from '../vmm/monitor.js';
import type { StopCause, VmRunner } from '../vmm/runner.js';
import { TerminalConsole, TerminalScreen } from '../vmm/terminal.js';
import type { VmFolder } from '../vmm/folder.js';
import { readSnapshotFile } from '../vmm/snapshot.js';
import { buildDefaultImage, findDefaultImage, ImageError } from '../vmm/image.js';
import { defaultGuestLinux } from '../vmm/guest.js';
import { formatHelp, parseOptions, UsageError, type OptionSpec, type Parsed } from './options.js';
import { StatusLine } from './status.js';
import { NET_OPTIONS, checkHostForwards, nicsFromOptions } from './netopts.js';
import { parseDrives } from './drive.js';
import { probeDriveFormat } from '../vmm/drives.js';
import { rtcStartSeconds } from './rtc.js';
import { virtioSpecs, VIRTIO_OPTIONS } from './virtio.js';
import { NIC_MODELS } from '../vmm/netspec.js';
import { parseQmpOption, startQmp } from './qmp.js';
import type { QmpServer } from '../server/qmp.js';

export const RUN_OPTIONS: OptionSpec[] = [
  { name: 'm', value: 'SIZE', help: 'guest RAM, e.g. 16M, 256M, 1G (no suffix: MiB; default 128M)' },
  { name: 'bios', value: 'FILE', help: `firmware ROM, mapped at the top of 4 GiB and its last 128 KiB below 1 MiB (default: Debian's SeaBIOS, ${DEFAULT_BIOS})` },
  { name: 'kernel', value: 'FILE', help: 'boot this Linux bzImage directly (32-bit boot protocol; no firmware unless -bios is also given)' },
  { name: 'initrd', value: 'FILE', help: 'initial ramdisk for -kernel' },
  { name: 'append', value: 'CMDLINE', help: 'kernel command line for -kernel' },
  { name: 'hda', value: 'FILE', help: 'disk image (raw or qcow2, told by its header) as the primary IDE master (opened read-write)' },
  { name: 'hdb', value: 'FILE', help: 'disk image (raw or qcow2) as the primary IDE slave' },
  { name: 'drive', value: 'OPTS', repeat: true, help: 'a drive as QEMU spells it: file=PATH,format=qcow2|raw,if=ide[,index=0-2][,media=cdrom][,snapshot=on][,readonly=on]; if=virtio for virtio-blk (/dev/vda), if=none,id=ID for -device virtio-blk-pci,drive=ID' },
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
  { name: 'qmp', value: 'DEV', help: 'QMP, the QEMU Machine Protocol, for tools written for QEMU: unix:PATH,server[,wait=off] or tcp:HOST:PORT,server[,wait=off]; without wait=off the VM waits for the first client' },
  { name: 'accel', value: 'tsvm[,tier=T][,threshold=N][,hot=N]', help: 'execution tier: interp (interpreter only), blocks (hot code compiled to JS), wasm (hot pages compiled to WebAssembly; the default); threshold=N compiles an address after N entries (1: on first sight; default 2000); hot=N compiles a wasm region again with the host\'s optimising compiler once it has run N instructions (default 1000000; 0: never)' },
  { name: 'd', value: 'ITEMS', help: "debug output on stderr; 'cpu' prints the final registers" },
  ...NET_OPTIONS,
  ...VIRTIO_OPTIONS,
  { name: 'help', value: null, help: 'show this help' },
];

const USAGE = `Usage: tsvm run [options]

With no options, boots the default guest (Debian's i386 Linux kernel and
busybox, built from Debian packages on first use) to a shell on this terminal.
Ctrl-A X quits; Ctrl-A C opens the monitor.

Exit status: 0 when the guest powers off or halts with interrupts disabled,
2 on a triple fault, 3 on -timeout, 1 for bad options or files.`;

export async function runCommand(args: string[]): Promise<number> {
  const opts = parseOptions(args, RUN_OPTIONS, 'run');
  if (opts.has('help')) {
    process.stdout.write(formatHelp(USAGE, RUN_OPTIONS));
    return 0;
  }
  // a virtio disk is an extra disk for the default guest; an IDE one replaces it
  const ideDrive = (opts.get('drive') ?? []).some((d) => !/(^|,)if=(virtio|none)(,|$)/.test(d));
  const useDefaultGuest = !opts.has('kernel') && !opts.has('bios') && !opts.has('hda') && !opts.has('hdb') && !opts.has('cdrom') && !ideDrive;
  return runWith(opts, useDefaultGuest);
}

async function runWith(opts: Parsed, defaultGuest: boolean): Promise<number> {
  const status = new StatusLine(process.stderr);
  const { spec, bootLabel } = specFromOptions(opts, defaultGuest, status);
  if (spec.nics) await checkHostForwards(spec.nics);
  return runSpec(spec, opts, { status, bootLabel, command: 'run' });
}

/** The machine a set of `tsvm run` options describes (host paths resolved against the current directory). */
export function specFromOptions(opts: Parsed, defaultGuest: boolean, status: StatusLine): { spec: MachineSpec; bootLabel: string } {
  const one = (n: string) => opts.get(n)?.[0];

  const memText = one('m') ?? '128M';
  const memoryBytes = parseSize(memText);
  if (memoryBytes === undefined) throw new UsageError(`run: -m '${memText}' is not a size; write it like 256M or 1G`);

  const spec: MachineSpec = {
    version: 1,
    memoryBytes,
    bios: null,
    vgaBios: null,
    linux: null,
    boot: 'cd',
    drives: {},
    rtcEpochSec: rtcStartSeconds(one('rtc'), Date.now(), -new Date().getTimezoneOffset()),
    serial: 'stdio',
    debugcon: one('debugcon') ?? null,
    postcodes: one('postcodes') ?? null,
  };
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
    spec.linux = defaultGuestLinux(img, one('append'));
    bootLabel = `Linux ${img.kernelVersion}`;
  } else {
    const kernel = one('kernel');
    if (kernel) {
      const initrd = one('initrd');
      spec.linux = { kernel: resolve(kernel), cmdline: one('append') ?? '' };
      if (initrd) spec.linux.initrd = resolve(initrd);
      bootLabel = 'Linux';
    } else if (opts.has('initrd') || opts.has('append')) {
      throw new UsageError('run: -initrd and -append need -kernel');
    }
    const bios = one('bios');
    if (bios) spec.bios = resolve(bios); // a path, never the name 'seabios'
    else if (!kernel) spec.bios = 'seabios';
    // the VGA card's option ROM, as QEMU's -vga std carries it (whatever the system firmware)
    if (spec.bios && (!bios || seabiosVgaInstalled())) spec.vgaBios = 'seabios';
  }

  const boot = one('boot');
  if (boot !== undefined && !/^[acd]+$/.test(boot)) throw new UsageError(`run: -boot '${boot}' is not a boot order; use letters c (hard disk) and d (CD-ROM), e.g. -boot d`);
  spec.boot = boot ?? 'cd';
  for (const slot of ['hda', 'hdb', 'cdrom'] as DriveSlot[]) {
    const file = one(slot);
    if (file === undefined) continue;
    const mode = opts.has('snapshot') ? 'snapshot' : slot === 'cdrom' ? 'ro' : 'rw';
    spec.drives[slot] = slot === 'cdrom' ? { file, format: 'raw', mode } : { file, format: probeDriveFormat(file, `-${slot}`), mode, probed: true };
  }
  // -drive, QEMU's spelling, into the same slots
  for (const d of parseDrives(opts.get('drive') ?? [], new Set((['hda', 'hdb', 'cdrom'] as DriveSlot[]).filter((n) => opts.has(n))))) {
    const mode = opts.has('snapshot') || d.snapshot ? 'snapshot' : d.media === 'cdrom' || d.readonly ? 'ro' : 'rw';
    spec.drives[d.slot] = d.format ? { file: d.file, format: d.format, mode } : { file: d.file, format: probeDriveFormat(d.file, '-drive'), mode, probed: true };
  }
  // the default guest has virtio-net's driver; other guests get QEMU's default, e1000
  const nics = nicsFromOptions(opts, defaultGuest ? 'virtio-net-pci' : 'e1000');
  if (nics.length) spec.nics = nics;
  const virtio = virtioSpecs(opts, { snapshot: opts.has('snapshot'), otherDeviceTypes: NIC_MODELS });
  if (virtio.length) spec.virtio = virtio;
  return { spec, bootLabel };
}

export interface RunContext {
  status: StatusLine;
  bootLabel: string;
  /** The command name for messages ('run', 'start'). */
  command: string;
  /** Directory the spec's relative paths are relative to (a VM folder). */
  baseDir?: string;
  /** The VM folder being run: the monitor gets savevm/loadvm/delvm and quit --save. */
  vm?: VmFolder;
  /** Boot the VM folder afresh, discarding its suspended state (tsvm start --force-boot). */
  forceBoot?: boolean;
}

/**
 * Run a machine spec on this terminal with the runtime options (-timeout,
 * -run-for, -accel, -display, -serial, -screendump, -no-reboot, -d). Returns the exit status.
 */
export async function runSpec(spec0: MachineSpec, opts: Parsed, ctx: RunContext): Promise<number> {
  const one = (n: string) => opts.get(n)?.[0];
  const { status, bootLabel, command } = ctx;
  let spec = spec0;
  let timeoutMs = Infinity;
  const t = one('timeout');
  if (t !== undefined) {
    const s = Number(t);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`${command}: -timeout '${t}' is not a positive number of seconds`);
    timeoutMs = s * 1000;
  }
  let runForNs = Infinity;
  const rf = one('run-for');
  if (rf !== undefined) {
    const s = Number(rf);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`${command}: -run-for '${rf}' is not a positive number of seconds`);
    runForNs = s * 1e9;
  }
  const debugItems = (one('d') ?? '').split(',').filter(Boolean);
  for (const d of debugItems) if (d !== 'cpu') throw new UsageError(`${command}: -d '${d}' is not known; the debug items are: cpu`);
  let accel: AccelConfig | undefined;
  const accelText = one('accel');
  if (accelText !== undefined) {
    try {
      accel = parseAccel(accelText);
    } catch (e) {
      if (e instanceof AccelError) throw new UsageError(`${command}: ${e.message}`);
      throw e;
    }
  }

  const display = one('display') ?? 'none';
  if (display !== 'none' && display !== 'curses') throw new UsageError(`${command}: -display '${display}' is not known; use none or curses`);
  if (display === 'curses' && opts.has('nographic')) throw new UsageError(`${command}: -display curses and -nographic contradict each other; pick one`);
  const curses = display === 'curses';
  const serialSpec = one('serial') ?? (curses ? 'none' : 'stdio');
  if (curses && serialSpec === 'stdio') throw new UsageError(`${command}: -display curses uses the terminal; send -serial to a file (file:PATH) or none`);
  spec = { ...spec, serial: serialSpec };
  const screendump = one('screendump');
  const qmpText = one('qmp');
  const qmpOpt = qmpText === undefined ? null : parseQmpOption(qmpText, command);

  let guestSpoke = false;
  let runner: VmRunner;
  try {
    runner = createRunner(spec, {
      baseDir: ctx.baseDir,
      accel,
      runForNs,
      timeoutMs,
      noReboot: opts.has('no-reboot'),
      onSerialOutput: () => {
        guestSpoke = true;
        status.clear();
      },
      onWarning: (w) => process.stderr.write(`tsvm: ${FLAG_WORDS.reduce((t, [a, b]) => t.replace(a, b), w)}\n`),
    });
  } catch (e) {
    if (e instanceof VmConfigError) throw new UsageError(`${command}: ${flagMessage(e, opts)}`);
    throw e;
  }

  // the terminal: serial input from stdin, Ctrl-A escapes, the monitor
  const interactive = serialSpec === 'stdio' || curses;
  const screen = curses ? new TerminalScreen() : null;
  const term: TerminalConsole | null = interactive
    ? new TerminalConsole({
        toGuest: (bytes) => runner.input(curses ? { kind: 'terminal-keys', bytes } : { kind: 'serial', port: 0, bytes }),
        quit: () => runner.stop('quit'),
        monitorLine: (line) => {
          void runner.call(() => runMonitorCommand(runner, line, ctx.vm)).then((r) => {
            if (r.output) term?.print(r.output + '\n');
            if (r.quit) runner.stop('quit');
          });
        },
      })
    : null;
  runner.on('tick', (wall) => {
    if (screen && !term?.inMonitor) {
      const t = runner.textScreen();
      if (t) screen.draw(t);
    }
    if (!guestSpoke && !curses && !status.silent) status.show(`booting ${bootLabel} ... ${(wall / 1000).toFixed(1)} s  (Ctrl-A X quits)`);
  });

  if (ctx.vm) {
    const sus = ctx.vm.suspendedPath();
    if (sus && ctx.forceBoot) {
      // discarded only now that the machine is built: a start refused for a bad option or file loses nothing
      ctx.vm.dropSuspended();
      ctx.vm.log('suspended state discarded (--force-boot)');
      status.done(`discarded ${ctx.vm.name}'s suspended state; booting it afresh`);
    } else if (sus) {
      // resume where `quit --save` left the guest; the saved state is dropped once loaded, as the disks move on from here
      try {
        await runner.restore(readSnapshotFile(sus));
      } catch (e) {
        runner.dispose();
        throw new UsageError(`${command}: cannot resume ${ctx.vm.name}: ${(e as Error).message}; revert to a snapshot (tsvm snapshot ${ctx.vm.name} list), or boot it afresh, discarding that state: tsvm start ${ctx.vm.name} --force-boot`);
      }
      ctx.vm.dropSuspended();
      status.done(`resuming ${ctx.vm.name} where it was suspended`);
      guestSpoke = true;
    }
    ctx.vm.log('started');
  }

  let qmp: QmpServer | null = null;
  if (qmpOpt) {
    try {
      qmp = await startQmp(qmpOpt, runner, ctx.vm, command);
    } catch (e) {
      runner.dispose();
      throw e;
    }
  }

  let cause: StopCause;
  term?.start();
  try {
    cause = await runner.run();
  } finally {
    await qmp?.close();
    term?.stop();
    screen?.close();
    status.clear();
    if (screendump) runner.screendump(screendump);
    runner.dispose();
  }
  let exit = 0;
  switch (cause) {
    case 'triple-fault':
      process.stderr.write(`tsvm: triple fault (${runner.tripleFaultChain}); the virtual CPU shut down\n`);
      exit = 2;
      break;
    case 'timeout':
      process.stderr.write(`tsvm: timeout after ${timeoutMs / 1000} s; stopping the VM\n`);
      exit = 3;
      break;
    case 'error': {
      const e = runner.error;
      process.stderr.write(`tsvm: the machine failed: ${e?.reason}\n${e?.dump}\n${e?.stack}\n`);
      exit = 4;
      break;
    }
    default:
      exit = 0;
  }
  if (debugItems.includes('cpu')) process.stderr.write(runner.cpuDump() + '\n');
  ctx.vm?.log(`stopped: ${cause}`);
  return exit;
}

/** Spec subjects as the options that set them, so errors name what the user typed. */
const FLAGS: Record<string, string> = {
  memory: '-m', bios: '-bios', kernel: '-kernel', vmlinux: '-kernel', initrd: '-initrd', cmdline: '-append', boot: '-boot',
  hda: '-hda', hdb: '-hdb', cdrom: '-cdrom', serial: '-serial', debugcon: '-debugcon', postcodes: '-postcodes',
};
/** Machine-level words in warnings from the drives, as the options that set them. */
const FLAG_WORDS: [RegExp, string][] = [[/^(hda|hdb|cdrom):/, '-$1:']];

function flagMessage(e: VmConfigError, opts: Parsed): string {
  const flag = FLAGS[e.subject];
  if (!flag || !opts.has(flag.slice(1))) return e.subject === 'machine' || e.subject === 'vgaBios' ? e.detail : e.message;
  return `${flag}: ${e.detail}`;
}

/** `tsvm run`: a machine spec from QEMU-style options (machineopts.ts), run by the VM runner. */
import { VmConfigError, type MachineSpec } from '../vmm/spec.js';
import { AccelError, createRunner, parseAccel, type AccelConfig } from '../vmm/resources.js';
import { runMonitorCommand } from '../vmm/monitor.js';
import type { StopCause, VmRunner } from '../vmm/runner.js';
import { TerminalConsole, TerminalScreen } from '../vmm/terminal.js';
import type { VmFolder } from '../vmm/folder.js';
import { readSnapshotFile } from '../vmm/snapshot.js';
import { formatHelp, parseOptions, UsageError, type Parsed } from './options.js';
import { StatusLine } from './status.js';
import { checkHostForwards } from './netopts.js';
import { RUN_OPTIONS, specFromOptions } from './machineopts.js';
import { parseQmpOption, startQmp } from './qmp.js';
import type { QmpServer } from '../server/qmp.js';

export { RUN_OPTIONS, specFromOptions };

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

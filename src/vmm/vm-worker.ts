/**
 * A VM's worker, in a worker thread (thread-worker.ts) or a child process
 * (vm-process.ts): builds the machine from the spec it is given, runs it
 * with the VM runner, and talks to its owner only by messages (see
 * thread-protocol.ts) over its end of the channel (worker-channel.ts).
 * Serial output and screen changes are batched per runner tick, so a chatty
 * guest costs one message per tick, not per byte. Anything that escapes
 * here ends this worker alone; the owner reports the VM as crashed and
 * every other VM goes on.
 */
import { memoryUsage, cpuUsage } from 'node:process';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import { openMachine } from './resources.js';
import { VmRunner } from './runner.js';
import { encodePng } from '../host/node/png.js';
import { KEY } from '../host/node/textscreen.js';
import { VmConfigError } from './spec.js';
import { VmFolder } from './folder.js';
import { revertSnapshot } from './revert.js';
import { machineState, readSnapshotFile } from './snapshot.js';
import { runMonitorCommand } from './monitor.js';
import { IoCounters } from './iostats.js';
import type { FromWorker, ToWorker, ScreenUpdate, SnapshotOp } from './thread-protocol.js';
import type { WorkerEnd } from './worker-channel.js';

/** How often the text screen is compared for changed rows. */
const SCREEN_INTERVAL_MS = 100;
/** How often a watched graphics screen is rendered and compared for changed tiles. */
const GRAPHICS_INTERVAL_MS = 200;
/** Graphics updates are squares of this many pixels a side (the edges smaller). */
const TILE = 64;
/** A VM whose owner is gone ends within this long even if its machine never reaches a slice boundary. */
const OWNER_GONE_EXIT_MS = 3000;

/** Run the VM `end.init` describes until it stops, then close the channel. */
export async function runVmWorker(end: WorkerEnd): Promise<void> {
  const init = end.init;
  const post = (m: FromWorker, transfer?: ArrayBuffer[]) => end.post(m, transfer);

  let runner: VmRunner;
  const io = new IoCounters();
  let folder: VmFolder | null = null;
  try {
    if (init.folder) {
      folder = VmFolder.open(init.folder);
      folder.lock(); // refused when another tsvm process runs this VM
    }
    // COM1 goes to this worker's owner, batched per tick (the runner flushes sinks at tick ends)
    const serialOut: number[] = [];
    const consoleChannel = {
      write(b: number): void {
        serialOut.push(b);
      },
      flush(): void {
        if (serialOut.length === 0) return;
        const bytes = Uint8Array.from(serialOut);
        serialOut.length = 0;
        post({ t: 'serial', bytes }, [bytes.buffer as ArrayBuffer]);
      },
      close(): void {
        this.flush();
      },
    };
    const { spec, machine, sinks, drives, nets, closers } = openMachine({ ...init.spec, serial: 'chan:console' }, { baseDir: init.baseDir, channels: { console: consoleChannel }, io });
    // the NICs' sockets and the virtio devices' files close with the run, or the worker would not end
    runner = new VmRunner(machine, { spec, sinks, closers: [...drives.map((d) => () => d.close()), ...nets, ...closers] });
    runner.cpuLimitPercent = init.cpuLimitPercent ?? null;
  } catch (e) {
    folder?.unlock();
    post({ t: 'failed-to-start', error: e instanceof VmConfigError || e instanceof Error ? e.message : String(e) });
    return end.exit(0);
  }

  // the screen while the owner wants it: text rows, or (while watched) the changed tiles of a graphics frame
  let screenOn = false;
  let graphicsOn = false;
  let lastRows: string[] = [];
  let lastScreenAt = 0;
  let lastMode = '';
  let lastFrame: Uint32Array | null = null;
  let lastW = 0;
  let lastH = 0;
  function sendScreen(force: boolean): void {
    const vga = runner.machine.vga;
    const mode = vga.displayMode();
    const u: ScreenUpdate = { cols: 0, rows: 0, changed: [], cursor: { x: 0, y: 0, visible: false }, mode, width: 0, height: 0, tiles: [] };
    if (mode === 'text') {
      const t = vga.renderText();
      u.cols = t.cols;
      u.rows = t.rows;
      u.cursor = { ...t.cursor };
      const keys: string[] = [];
      for (let r = 0; r < t.rows; r++) {
        const attrs = Array.from(t.attrs.subarray(r * t.cols, (r + 1) * t.cols));
        const key = t.chars[r] + '\0' + attrs.join(',');
        keys.push(key);
        if (force || key !== lastRows[r]) u.changed.push({ row: r, text: t.chars[r], attrs });
      }
      lastRows = keys;
    } else lastRows = [];
    // while a screen socket watches, every mode also goes out as pixels (text drawn with the guest's
    // own plane-2 font, cursor and blink), so a page shows what the screenshot shows
    if (mode !== 'blank' && graphicsOn) {
      const f = vga.renderPixels();
      u.width = f.width;
      u.height = f.height;
      u.tiles = changedTiles(f.width, f.height, new Uint8Array(f.rgba.buffer, f.rgba.byteOffset, f.width * f.height * 4), force || mode !== lastMode);
    } else lastFrame = null;
    if (force || u.changed.length || u.tiles.length || mode !== lastMode) post({ t: 'screen', update: u });
    lastMode = mode;
  }

  /**
   * The tiles of a frame that differ from the last frame sent (all of them
   * when `all` or the size changed), each as a PNG. Tiles rather than one
   * bounding box: a mouse pointer in one corner and a clock in another cost
   * two small tiles, not the screen between them.
   */
  function changedTiles(w: number, h: number, rgba: Uint8Array, all: boolean): ScreenUpdate['tiles'] {
    const px = new Uint32Array(rgba.buffer, rgba.byteOffset, w * h);
    const prev = lastFrame;
    const full = all || !prev || lastW !== w || lastH !== h;
    const tiles: ScreenUpdate['tiles'] = [];
    for (let y = 0; y < h; y += TILE) {
      for (let x = 0; x < w; x += TILE) {
        const tw = Math.min(TILE, w - x);
        const th = Math.min(TILE, h - y);
        let changed = full;
        for (let r = 0; r < th && !changed; r++) {
          const o = (y + r) * w + x;
          for (let c = 0; c < tw; c++) {
            if (px[o + c] !== (prev as Uint32Array)[o + c]) {
              changed = true;
              break;
            }
          }
        }
        if (!changed) continue;
        const out = new Uint8Array(tw * th * 4);
        for (let r = 0; r < th; r++) out.set(rgba.subarray(((y + r) * w + x) * 4, ((y + r) * w + x + tw) * 4), r * tw * 4);
        tiles.push({ x, y, w: tw, h: th, png: encodePng(tw, th, out) });
      }
    }
    lastFrame = px.slice();
    lastW = w;
    lastH = h;
    return tiles;
  }

  // figures for stats: instructions and the VM's CPU time between samples. A process worker
  // counts its whole process (every thread: V8's compilers and GC too); a thread worker has
  // only its own busy time (a thread's CPU clock is not available to JS).
  const wholeProcess = end.isolation === 'process';
  const cpuMs = (): number => {
    if (!wholeProcess) return performance.eventLoopUtilization().active;
    const u = cpuUsage();
    return (u.user + u.system) / 1000;
  };
  // the CPU cap counts what the clock counts: the whole process for a process worker
  if (wholeProcess) runner.cpuClock = cpuMs;
  // a process worker whose daemon is gone (even killed by SIGKILL: its end of the channel closes)
  // stops its guest at the next slice boundary, closing the disks in order, and ends
  end.onOwnerGone(() => {
    runner.stop('quit');
    setTimeout(() => void end.exit(1), OWNER_GONE_EXIT_MS).unref();
  });
  // SIGTERM to a VM process is a hard stop of that VM (the daemon sees 'quit')
  if (wholeProcess) process.on('SIGTERM', () => runner.stop('quit'));
  let sampleAt = performance.now();
  let sampleInstr = runner.machine.cpu.instructionCount();
  let sampleCpu = cpuMs();
  let rate = 0;
  let share = 0;

  function sample(): void {
    const now = performance.now();
    if (now - sampleAt < 250) return;
    const n = runner.machine.cpu.instructionCount();
    const d = n - sampleInstr;
    rate = d >= 0 ? (d * 1000) / (now - sampleAt) : rate; // a reset restarts the count
    const c = cpuMs();
    share = (c - sampleCpu) / (now - sampleAt);
    sampleCpu = c;
    sampleAt = now;
    sampleInstr = n;
  }

  runner.on('tick', () => {
    sample();
    if (screenOn && performance.now() - lastScreenAt >= (graphicsOn ? GRAPHICS_INTERVAL_MS : SCREEN_INTERVAL_MS)) {
      lastScreenAt = performance.now();
      sendScreen(false);
    }
  });
  runner.on('state', (s) => {
    if (s === 'running' || s === 'paused') post({ t: 'state', state: s });
  });

  end.onMessage((m: ToWorker) => {
    switch (m.t) {
      case 'serial':
        runner.input({ kind: 'serial', port: 0, bytes: m.bytes });
        break;
      case 'terminal-keys':
        runner.input({ kind: 'terminal-keys', bytes: m.bytes });
        break;
      case 'key': {
        const code = KEY[m.code];
        if (code !== undefined) runner.input({ kind: 'key', code, down: m.down });
        break;
      }
      case 'pause':
        runner.pause();
        break;
      case 'resume':
        runner.resume();
        break;
      case 'reset':
        void runner.call(() => runner.machine.requestReset());
        break;
      case 'powerdown':
        void runner.call(() => runner.machine.pm.pressPowerButton());
        break;
      case 'stop':
        runner.stop('quit');
        break;
      case 'cpu-limit':
        runner.cpuLimitPercent = m.percent;
        break;
      case 'screen': {
        const first = !screenOn && m.on;
        screenOn = m.on;
        graphicsOn = m.on && (m.graphics ?? false);
        if (first || m.full) void runner.call(() => sendScreen(true));
        break;
      }
      case 'mouse':
        runner.input({ kind: 'mouse', dx: m.dx, dy: m.dy, buttons: m.buttons, dz: m.dz });
        break;
      case 'screenshot':
        void runner.call(() => post({ t: 'screenshot', id: m.id, png: runner.screenshotPng() }));
        break;
      case 'stats':
        void runner.call(() => {
          sample();
          const h = getHeapStatistics();
          post({
            t: 'stats',
            id: m.id,
            stats: {
              guestSeconds: runner.guestNs / 1e9,
              instructionsPerSec: runner.state === 'running' ? rate : 0,
              cpuShare: runner.state === 'running' ? share : 0,
              cpuSeconds: cpuMs() / 1000,
            rssBytes: memoryUsage.rss(),
            heapBytes: h.used_heap_size,
              guestRamBytes: runner.machine.config.memoryBytes,
              cpuLimitPercent: runner.cpuLimitPercent,
              ...io.snapshot(),
            },
          });
        });
        break;
      case 'snapshot':
        void runner
          .call(() => snapshotOp(m.req, m.id))
          .then(
            (result) => post({ t: 'done', id: m.id, result, error: null }),
            (e: unknown) => post({ t: 'done', id: m.id, result: null, error: (e as Error).message ?? String(e) }),
          );
        break;
      case 'monitor':
        void runner
          .call(() => runMonitorCommand(runner, m.line, folder ?? undefined))
          .then(
            (r) => {
              post({ t: 'done', id: m.id, result: r.output, error: null });
              if (r.quit) runner.stop('quit');
            },
            (e: unknown) => post({ t: 'done', id: m.id, result: null, error: (e as Error).message ?? String(e) }),
          );
        break;
      case 'suspend':
        void runner
          .call(() => {
            if (!folder) throw new Error('this VM has no folder to suspend to');
            folder.suspend(machineState(runner.machine, folder.spec));
          })
          .then(
            () => {
              post({ t: 'done', id: m.id, result: null, error: null });
              runner.stop('quit');
            },
            (e: unknown) => post({ t: 'done', id: m.id, result: null, error: (e as Error).message ?? String(e) }),
          );
        break;
      case 'crash':
        setImmediate(() => {
          throw new Error(m.reason);
        });
        break;
    }
  });

  /**
   * A snapshot operation, between slices. A save tells the daemon its
   * progress as it goes (the worker is busy, but its messages go out at once),
   * at most once per whole percent.
   */
  function snapshotOp(r: SnapshotOp, id: number): unknown {
    if (!folder) throw new Error('this VM has no folder to keep snapshots in');
    let lastPercent = -1;
    const progress = (done: number, total: number) => {
      const percent = total > 0 ? Math.floor((done * 100) / total) : 100;
      if (percent === lastPercent) return;
      lastPercent = percent;
      post({ t: 'progress', id, done, total });
    };
    if (r.op === 'save') return folder.saveSnapshot(r.tag, r.description, machineState(runner.machine, folder.spec), progress);
    if (r.op === 'revert') return revertSnapshot(folder, r.tag, runner.machine);
    folder.deleteSnapshot(r.tag);
    return null;
  }

  // resume where a suspend left the guest; the saved state is dropped once loaded, as the disks move on from here
  const suspended = folder?.suspendedPath();
  if (folder && suspended) {
    try {
      await runner.restore(readSnapshotFile(suspended));
    } catch (e) {
      runner.dispose();
      folder.unlock();
      post({ t: 'failed-to-start', error: `cannot resume the suspended state: ${(e as Error).message}` });
      return end.exit(0);
    }
    folder.dropSuspended();
    folder.log('resumed from the suspended state');
    post({ t: 'resumed' });
  }

  const cause = await runner.run();
  runner.dispose();
  folder?.unlock();
  post({ t: 'stopped', cause, error: runner.error ? `${runner.error.reason}\n${runner.error.dump}` : null });
  end.close();
}

// The VM runner driven as the CLI and the daemon drive it: host input through
// the queue, stop causes, pause/resume with a save in between, and an
// exception inside the machine ending in the 'error' state, not a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../board/machine.js';
import { DEEP_IDLE_AFTER_MS, IDLE_AHEAD_NS, IDLE_SLEEP_DEEP_MS, IDLE_SLEEP_MIN_MS, VmRunner, type RunnerState } from './runner.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-runner-'));

/** A 64 KiB ROM whose reset vector jumps to `body` (16-bit real mode). */
function rom(name: string, body: string): Uint8Array {
  const src = join(dir, `${name}.asm`);
  const bin = join(dir, `${name}.bin`);
  writeFileSync(src, `bits 16\norg 0\nstart:\n${body}\ntimes 0xfff0 - ($ - $$) db 0\njmp 0xf000:start\ntimes 0x10000 - ($ - $$) db 0\n`);
  execFileSync('nasm', ['-f', 'bin', src, '-o', bin]);
  return new Uint8Array(readFileSync(bin));
}

// echo COM1 input to the debug console until 'q', then halt with interrupts off
const ECHO = `
.wait: mov dx, 0x3fd
in al, dx
test al, 1
jz .wait
mov dx, 0x3f8
in al, dx
out 0xe9, al
cmp al, 'q'
jne .wait
cli
hlt`;

test('serial input queued from the host reaches the guest; the run ends when the guest halts', async () => {
  const out: number[] = [];
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('echo', ECHO), debugcon: { write: (b) => out.push(b) } });
  const r = new VmRunner(m, { timeoutMs: 60_000 });
  const states: RunnerState[] = [];
  r.on('state', (s) => states.push(s));
  const done = r.run();
  r.input({ kind: 'serial', port: 0, bytes: new TextEncoder().encode('hello q') });
  assert.equal(await done, 'halt');
  assert.equal(Buffer.from(out).toString(), 'hello q');
  assert.deepEqual(states, ['running', 'stopped']);
  assert.equal(r.state, 'stopped');
});

test('pause, save while paused, resume, and stop on request', async () => {
  const out: number[] = [];
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('echo2', ECHO), debugcon: { write: (b) => out.push(b) } });
  const r = new VmRunner(m, { timeoutMs: 60_000 });
  const done = r.run();
  r.pause();
  await new Promise<void>((res) => r.on('state', (s) => s === 'paused' && res()));
  const t0 = m.clock.nowNs;
  const saved = await r.call(() => r.saveState());
  assert.equal(saved.ram.length, 1 << 20);
  assert.equal(m.clock.nowNs, t0, 'guest time stands still while paused');
  r.input({ kind: 'serial', port: 0, bytes: new TextEncoder().encode('ab') });
  r.resume();
  await new Promise<void>((res) => {
    const check = () => (out.length >= 2 ? res() : setTimeout(check, 5));
    check();
  });
  r.stop('quit');
  assert.equal(await done, 'quit');
  assert.equal(Buffer.from(out).toString(), 'ab');
});

test('an exception inside the machine puts the runner in the error state with a dump', async () => {
  const sink = {
    write(): void {
      throw new Error('host sink exploded');
    },
  };
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('boom', `mov ax, 0x1234\nmov al, 'x'\nout 0xe9, al\njmp $`), debugcon: sink });
  const r = new VmRunner(m, { timeoutMs: 60_000 });
  assert.equal(await r.run(), 'error');
  assert.equal(r.state, 'error');
  assert.match(r.error?.reason ?? '', /host sink exploded/);
  assert.match(r.error?.dump ?? '', /EAX=00001278/);
  assert.match(r.error?.dump ?? '', /guest time/);
});

test('run-for ends the run after that much guest time', async () => {
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('spin', 'jmp $') });
  const r = new VmRunner(m, { runForNs: 5e6 });
  assert.equal(await r.run(), 'run-for');
  assert.ok(r.guestNs >= 5e6);
});

test('loading a state from later (or earlier) in guest time while running: pacing and run-for start again from it', async () => {
  // a guest that spins: guest time moves with execution, so the pacing base shows what the runner holds it to
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('spin2', 'jmp $') });
  const r = new VmRunner(m, { runForNs: 3600e9 });
  const ticks: (() => void)[] = [];
  r.on('tick', () => ticks.splice(0).forEach((f) => f()));
  const tick = () => new Promise<void>((res) => ticks.push(res));
  const done = r.run();
  await tick();
  for (const jumpNs of [1000e9, -500e9]) {
    const s = await r.call(() => r.saveState());
    s.clock = { nowNs: s.clock.nowNs + jumpNs };
    const runBefore = r.guestNs;
    await r.call(() => r.loadState(s)); // as the monitor's loadvm does, between slices
    await tick();
    // before the fix the base stayed at the old clock: 1000 s ahead (an idle guest then crawled), or 500 s behind
    assert.ok(Math.abs(r.paceAheadNs) < 100e9, `after a jump of ${jumpNs / 1e9} s the pacing base is ${r.paceAheadNs / 1e9} s off`);
    // guest time run does not count the jump: run-for neither ends at once nor runs 500 s longer
    assert.ok(r.guestNs >= runBefore && r.guestNs < runBefore + 100e9, `guest time run went from ${runBefore / 1e9} s to ${r.guestNs / 1e9} s`);
    assert.equal(r.state, 'running');
  }
  r.stop();
  assert.equal(await done, 'quit');
});

/** A guest that halts between PIT interrupts (mode 2, every `count` / 1.193182 us; 0 is 65536, 55 ms), acknowledging each. */
function idleGuest(count: number): string {
  return `
cli
mov al, 0x11
out 0x20, al
mov al, 0x08
out 0x21, al
mov al, 0x04
out 0x21, al
mov al, 0x01
out 0x21, al
mov al, 0xfe
out 0x21, al
xor ax, ax
mov ds, ax
mov ss, ax
mov sp, 0x7000
mov word [8*4], handler
mov word [8*4+2], 0xf000
mov al, 0x34
out 0x43, al
mov al, ${count & 0xff}
out 0x40, al
mov al, ${count >> 8}
out 0x40, al
sti
.idle: hlt
jmp .idle
handler: mov al, 0x20
out 0x20, al
iret`;
}

test("an idle guest's clock follows the wall clock: a halted CPU waits for its next timer in wall time instead of jumping to it", async () => {
  // the PIT interrupts every 55 ms; between interrupts the guest halts
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom('idle', idleGuest(0)) });
  const r = new VmRunner(m, { runForNs: 3600e9 });
  let most = -Infinity;
  let ticks = 0;
  r.on('tick', () => {
    ticks++;
    if (m.cpu.halted) most = Math.max(most, r.paceAheadNs);
  });
  const done = r.run();
  await new Promise((res) => setTimeout(res, 400));
  // a guest that fell behind the wall clock (it ran slowly) does not race through its timers to catch up
  await r.call(() => {
    (r as unknown as { _paceWall: number })._paceWall -= 5000;
  });
  const g0 = m.clock.nowNs;
  await new Promise((res) => setTimeout(res, 300));
  const ran = m.clock.nowNs - g0;
  r.stop();
  assert.equal(await done, 'quit');
  assert.ok(ran < 2e9, `5 s behind, the idle guest ran ${ran / 1e6} ms of guest time in 300 ms`);
  assert.ok(ticks > 3 && r.guestNs > 55e6, `the guest ran (${ticks} ticks, ${r.guestNs / 1e6} ms of guest time)`);
  // before, each halt jumped to the next PIT deadline, up to 55 ms ahead of the wall clock
  assert.ok(most <= IDLE_AHEAD_NS + 1e6, `an idle guest ran ${most / 1e6} ms ahead of the wall clock`);
  assert.equal(m.idleHorizonNs, Infinity, 'the horizon is lifted when the run ends');
});

/** A runner for the idle guest whose timer fires every millisecond, started, and its wake-ups so far. */
function quietRunner(name: string): { m: Machine; r: VmRunner; done: Promise<string>; wakeUps: () => number } {
  const m = new Machine({ memoryBytes: 1 << 20, bios: rom(name, idleGuest(1193)) });
  const r = new VmRunner(m, { runForNs: 3600e9 });
  let n = 0;
  r.on('tick', () => n++);
  return { m, r, done: r.run(), wakeUps: () => n };
}

/**
 * Over the next `ms` of wall time: at most one wake-up per `least` ms (and
 * a little slack), the guest's clock keeping to the wall clock within `least`.
 */
async function assertWokenEvery(q: ReturnType<typeof quietRunner>, least: number, ms: number): Promise<void> {
  const n0 = q.wakeUps();
  const g0 = q.m.clock.nowNs;
  const w0 = performance.now();
  await new Promise((res) => setTimeout(res, ms));
  const n = q.wakeUps() - n0;
  const guestMs = (q.m.clock.nowNs - g0) / 1e6;
  const wallMs = performance.now() - w0;
  assert.ok(n <= (wallMs / least) * 1.25 + 2, `${n} wake-ups in ${wallMs.toFixed(0)} ms`);
  assert.ok(guestMs > wallMs / 2 && guestMs < wallMs + least + 10, `${guestMs.toFixed(1)} ms of guest time in ${wallMs.toFixed(0)} ms`);
}

test('an idle guest whose timer fires every millisecond is woken every IDLE_SLEEP_MIN_MS, its clock still the wall clock', async () => {
  const q = quietRunner('idle-1ms');
  try {
    await new Promise((res) => setTimeout(res, 200));
    // a thousand timer interrupts a second; before, a wake-up for each
    await assertWokenEvery(q, IDLE_SLEEP_MIN_MS, 600);
  } finally {
    q.r.stop();
    assert.equal(await q.done, 'quit');
  }
});

test('a quiet idle guest sleeps IDLE_SLEEP_DEEP_MS at least, woken as rarely; host input brings back the short sleeps', async () => {
  const q = quietRunner('idle-quiet');
  const { m, r } = q;
  const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
  try {
    await sleep(300);
    assert.equal(r.idleSleepMs, IDLE_SLEEP_MIN_MS, 'just started: the short sleeps');
    await sleep(DEEP_IDLE_AFTER_MS);
    assert.equal(r.idleSleepMs, IDLE_SLEEP_DEEP_MS, 'quiet for a second: the long sleeps');
    await assertWokenEvery(q, IDLE_SLEEP_DEEP_MS, 640);
    // work between slices (a stats sample, a monitor command) leaves it quiet
    await r.call(() => m.cpu.instructionCount());
    await sleep(50);
    assert.equal(r.idleSleepMs, IDLE_SLEEP_DEEP_MS, 'a call between slices is not guest input');
    // a byte on the serial port is host input: the guest is active again
    r.input({ kind: 'serial', port: 0, bytes: new Uint8Array([0x41]) });
    await sleep(50);
    assert.equal(r.idleSleepMs, IDLE_SLEEP_MIN_MS, 'after input: the short sleeps again');
  } finally {
    r.stop();
    assert.equal(await q.done, 'quit');
  }
});

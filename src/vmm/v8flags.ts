/**
 * V8 settings the emulator needs in a Node process, set once before any
 * WebAssembly is compiled (V8's flags are process-wide, so VMs in worker
 * threads share them).
 *
 * --no-turbo-jt: the wasm tier's region functions (a dispatch loop over many
 * labels, each exiting through the same few blocks) can send TurboFan's jump
 * threading into a loop that never ends (Node 20, V8 11.3: a background thread
 * spinning in JumpThreading::ComputeForwarding). At run time that thread only
 * burns a host core and the function never tiers up; at exit Node drains the
 * background tasks first, so the process never ends. Jump threading only
 * removes jumps to jumps; regions lose nothing measurable without it.
 *
 * --liftoff-only: regions stay in V8's baseline compiler and never tier up to
 * TurboFan. Measured on the default guest (docs/benchmarks.md, 2026-12-05):
 * the background tier-up cost 7-43 s of helper-thread CPU per bench/linux
 * phase, 10-100 times the regions' own compile time, and most of the peak
 * RSS (1.1 GB); without it the boot to the prompt took 22.5 s of CPU instead
 * of 57.1 s and the peak RSS fell to 657 MiB. Only seq+gzip ran slower
 * (140 s of CPU against 113 s): its deflate loops gain from TurboFan.
 */
import { setFlagsFromString } from 'node:v8';

let done = false;

export function tuneV8(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-turbo-jt');
  setFlagsFromString('--liftoff-only');
  // a developer's knob for measuring V8's wasm settings (e.g. --liftoff-only): NODE_OPTIONS refuses most V8 flags
  const extra = process.env['TSVM_V8_FLAGS'];
  if (extra) setFlagsFromString(extra);
}

tuneV8();

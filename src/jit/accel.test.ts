import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccelError, DEFAULT_THRESHOLD, defaultAccel, parseAccel } from './accel.js';

test('-accel: tier and threshold parse, defaults fill the rest', () => {
  assert.deepEqual(parseAccel('tsvm'), { tier: 'wasm', threshold: DEFAULT_THRESHOLD });
  assert.deepEqual(parseAccel('tsvm,tier=interp'), { tier: 'interp', threshold: DEFAULT_THRESHOLD });
  assert.deepEqual(parseAccel('tsvm,tier=blocks,threshold=1'), { tier: 'blocks', threshold: 1 });
  assert.deepEqual(parseAccel('tsvm,threshold=300,tier=blocks'), { tier: 'blocks', threshold: 300 });
  assert.deepEqual(parseAccel('tsvm,hot=0'), { tier: 'wasm', threshold: DEFAULT_THRESHOLD, hot: 0 });
  assert.deepEqual(parseAccel('tsvm,hot=5000000'), { tier: 'wasm', threshold: DEFAULT_THRESHOLD, hot: 5000000 });
});

test('-accel: bad values say what is wrong', () => {
  assert.throws(() => parseAccel('tcg'), (e: Error) => e instanceof AccelError && /accelerator is 'tsvm'/.test(e.message));
  assert.throws(() => parseAccel('tsvm,tier=jit'), /tier 'jit' is not known/);
  assert.throws(() => parseAccel('tsvm,threshold=-1'), /threshold '-1'/);
  assert.throws(() => parseAccel('tsvm,threshold=1.5'), /threshold '1.5'/);
  assert.throws(() => parseAccel('tsvm,hot=-5'), /hot '-5' is not a whole number from 0/);
  assert.throws(() => parseAccel('tsvm,hot=lots'), /hot 'lots'/);
  assert.throws(() => parseAccel('tsvm,speed=3'), /property 'speed' is not known/);
});

test('TSVM_CPU_BLOCKS stays a fallback for the default', () => {
  assert.deepEqual(defaultAccel(undefined), { tier: 'wasm', threshold: DEFAULT_THRESHOLD });
  assert.deepEqual(defaultAccel('0'), { tier: 'interp', threshold: DEFAULT_THRESHOLD });
  assert.deepEqual(defaultAccel('eager'), { tier: 'blocks', threshold: 1 });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSpec, specMismatch, validateSpec, VmConfigError } from './spec.js';
import { validateVirtio } from './virtio.js';

test('virtio in the machine spec: validated field by field, kept through validateSpec, part of state compatibility', () => {
  const list = [
    { type: 'blk', file: 'disk.img', format: 'raw', mode: 'ro' },
    { type: 'rng' },
    { type: 'console', chardev: 'socket:/tmp/c.sock' },
    { type: '9p', path: 'share', tag: 'host', readOnly: true },
  ];
  assert.deepEqual(validateVirtio(list), list);
  const spec = validateSpec(JSON.parse(JSON.stringify({ ...defaultSpec(), virtio: list })));
  assert.deepEqual(spec.virtio, list);
  assert.equal(validateSpec(defaultSpec()).virtio, undefined);
  assert.match(specMismatch(spec, defaultSpec()) ?? '', /virtio devices are \[blk,rng,console,9p\] here and \[\]/);
  const bad: [unknown, RegExp][] = [
    [{}, /must be a list/],
    [[{ type: 'gpu' }], /virtio\[0\]: type 'gpu' is not a virtio device/],
    [[{ type: 'rng', extra: 1 }], /unknown field 'extra'/],
    [[{ type: 'blk', file: 'x', format: 'vmdk' }], /format 'vmdk' is not one tsvm reads/],
    [[{ type: 'console', chardev: 'tcp:1' }], /is not 'file:PATH' or 'socket:PATH'/],
    [[{ type: '9p', path: 'd', tag: 'x'.repeat(40) }], /longer than 31 bytes/],
    [[{ type: '9p', path: 'd', tag: 't', readOnly: 'yes' }], /readOnly must be true or false/],
  ];
  for (const [v, re] of bad) assert.throws(() => validateVirtio(v), (e: Error) => e instanceof VmConfigError && re.test(e.message), JSON.stringify(v));
});

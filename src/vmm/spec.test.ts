// The machine spec as a file holds it: JSON in, a checked spec out, and a
// clear error naming the field for each kind of mistake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSpec, specMismatch, validateSpec, VmConfigError } from './spec.js';

test('a spec survives JSON unchanged', () => {
  const s = defaultSpec({ memoryBytes: 256 << 20, drives: { hda: { file: 'disk.img', format: 'raw', mode: 'rw' } }, debugcon: 'file:log.txt' });
  assert.deepEqual(validateSpec(JSON.parse(JSON.stringify(s))), s);
});

test('omitted optional fields take their defaults', () => {
  const s = validateSpec({ version: 1, memoryBytes: 1 << 20, bios: 'seabios', drives: { cdrom: { file: 'a.iso' } } });
  assert.equal(s.boot, 'cd');
  assert.equal(s.serial, 'stdio');
  assert.deepEqual(s.drives.cdrom, { file: 'a.iso', format: 'raw', mode: 'ro' });
});

test('mistakes are refused with the field they are in', () => {
  const base = defaultSpec();
  const bad: [unknown, RegExp][] = [
    [null, /^machine: must be an object/],
    [{ ...base, version: 9 }, /^version: .*version 9; this tsvm reads version 1/],
    [{ ...base, memoryBytes: 1000 }, /^memory: 1000 bytes is not a RAM size/],
    [{ ...base, memorybytes: 5 }, /^machine: has an unknown field 'memorybytes'/],
    [{ ...base, bios: null, linux: null }, /^machine: nothing to run/],
    [{ ...base, boot: 'z' }, /^boot: 'z' is not a boot order/],
    [{ ...base, drives: { hdc: { file: 'x' } } }, /^drives: has an unknown field 'hdc'/],
    [{ ...base, drives: { hda: { file: 'x', format: 'vmdk' } } }, /^hda: format 'vmdk' is not one tsvm reads/],
    [{ ...base, drives: { hda: { file: '' } } }, /^hda: must be the path of a disk image/],
    [{ ...base, serial: 'tcp:1' }, /^serial: 'tcp:1' is not a character device/],
    [{ ...base, linux: { cmdline: 'x' } }, /^kernel: must be the path of a Linux bzImage/],
  ];
  for (const [json, re] of bad) {
    assert.throws(() => validateSpec(json), (e: unknown) => e instanceof VmConfigError && re.test(e.message), `expected ${re}`);
  }
});

test('specMismatch names what makes two machines different', () => {
  const a = defaultSpec();
  assert.equal(specMismatch(a, { ...a, serial: 'none' }), null);
  assert.match(specMismatch(a, { ...a, memoryBytes: 64 << 20 }) ?? '', /RAM is 128 MiB here and 64 MiB/);
  assert.match(specMismatch(a, { ...a, drives: { hda: { file: 'd', format: 'raw', mode: 'rw' } } }) ?? '', /drive hda/);
});

// What the default guest gets without being asked, through the CLI: tsvm
// create gives it a virtio-blk data disk and a virtio-net NIC (and -nic none,
// -disk-size change that); -nic user means virtio-net-pci for the default
// guest and e1000 for any other. No guest runs here (the boot tests use them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSVM } from '../helpers/child.js';
import { parseOptions } from '../../src/cli/options.js';
import { RUN_OPTIONS, specFromOptions } from '../../src/cli/run.js';
import { StatusLine } from '../../src/cli/status.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-defaults-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args, '--dir', dir], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const vmJson = (name: string) => JSON.parse(readFileSync(join(dir, `${name}.tsvm`, 'vm.json'), 'utf8'));

test('tsvm create: the default guest gets a 1 GiB virtio-blk data disk and a virtio-net NIC', () => {
  const c = tsvm('create', 'plain');
  assert.equal(c.code, 0, c.err);
  const spec = vmJson('plain').spec;
  assert.deepEqual(spec.virtio, [{ type: 'blk', file: 'disks/vda.qcow2', format: 'qcow2', mode: 'rw' }]);
  assert.deepEqual(spec.drives, {});
  assert.equal(spec.nics.length, 1);
  assert.equal(spec.nics[0].model, 'virtio-net-pci');
  assert.equal(spec.nics[0].net, 'user');
  const info = spawnSync('qemu-img', ['info', '--output=json', join(dir, 'plain.tsvm', 'disks', 'vda.qcow2')], { encoding: 'utf8' });
  assert.equal(JSON.parse(info.stdout)['virtual-size'], 1 << 30);

  assert.equal(tsvm('create', 'small', '-disk-size', '256M', '-nic', 'none').code, 0);
  assert.equal(vmJson('small').spec.nics, undefined);
  assert.match(spawnSync('qemu-img', ['info', join(dir, 'small.tsvm', 'disks', 'vda.qcow2')], { encoding: 'utf8' }).stdout, /virtual size: 256 MiB/);
  assert.equal(tsvm('create', 'fwd', '-nic', 'user,hostfwd=tcp:127.0.0.1:10080-:80').code, 0);
  assert.deepEqual(vmJson('fwd').spec.nics.map((n: { model: string; hostfwd: string[] }) => [n.model, n.hostfwd]), [['virtio-net-pci', ['tcp:127.0.0.1:10080-:80']]]);
  assert.match(tsvm('create', 'bad', '-disk-size', 'lots').err, /-disk-size 'lots' is not a disk size/);

  // another guest keeps its IDE disk and gets no NIC unless asked
  const rom = join(dir, 'rom.bin');
  writeFileSync(rom, Buffer.alloc(65536, 0xf4));
  assert.equal(tsvm('create', 'rom', '-bios', rom, '-disk-size', '8M').code, 0);
  const r = vmJson('rom').spec;
  assert.equal(r.drives.hda.file, 'disks/hda.qcow2');
  assert.equal(r.virtio, undefined);
  assert.equal(r.nics, undefined);
});

test('-nic user: virtio-net-pci for the default guest, e1000 for another guest, model= for either', () => {
  const spec = (defaultGuest: boolean, ...args: string[]) => specFromOptions(parseOptions(args, RUN_OPTIONS, 'run'), defaultGuest, new StatusLine(process.stderr)).spec;
  assert.equal(spec(true, '-nic', 'user').nics?.[0].model, 'virtio-net-pci');
  assert.equal(spec(true, '-nic', 'user,model=e1000').nics?.[0].model, 'e1000');
  assert.equal(spec(false, '-kernel', 'bzImage', '-nic', 'user').nics?.[0].model, 'e1000');
  assert.equal(spec(false, '-kernel', 'bzImage', '-nic', 'user,model=virtio-net-pci').nics?.[0].model, 'virtio-net-pci');
  assert.equal(spec(true).nics, undefined, 'tsvm run gives no NIC unless asked, as before');
});

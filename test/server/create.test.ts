/**
 * A VM created through the API from the default guest is the VM `tsvm create
 * NAME` makes: the same machine in vm.json (a 1 GiB qcow2 data disk on
 * virtio-blk, a virtio-net NIC on the user-mode network), the same disk.
 * Then the create options the CLI also has (the disk's size, the NIC's
 * network) and their refusals. No guest runs here: test/server/console.test.ts
 * boots an API-created VM and sees /dev/vda mounted and the DHCP address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../helpers/daemon.js';
import { TsvmChild } from '../helpers/child.js';
import { findDefaultImage } from '../../src/vmm/image.js';

type Spec = Record<string, unknown> & { virtio?: { file: string }[]; nics?: { model: string; net: string; network?: string; mac: string | null }[]; rtcEpochSec?: number };

const vmSpec = (dir: string, name: string): Spec => (JSON.parse(readFileSync(join(dir, `${name}.tsvm`, 'vm.json'), 'utf8')) as { spec: Spec }).spec;
const virtualSize = (file: string): number => (JSON.parse(spawnSync('qemu-img', ['info', '--output=json', file], { encoding: 'utf8' }).stdout) as { 'virtual-size': number })['virtual-size'];

test('create through the API: the default guest is the VM tsvm create makes', async (t) => {
  assert.ok(findDefaultImage(), 'the default guest is not built (test/run.js builds it with tsvm image build)');
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());

  await t.test('the same vm.json machine and the same 1 GiB data disk as tsvm create NAME', async () => {
    assert.equal((await d.api('POST', '/api/vms', { name: 'api', guest: 'default' })).status, 201);
    const cliDir = mkdtempSync(join(tmpdir(), 'tsvm-create-cli-'));
    const cli = new TsvmChild(['create', 'cli', '--dir', cliDir]);
    assert.equal(await cli.exit(), 0, cli.tail());

    const fromApi = vmSpec(d.dir, 'api');
    const fromCli = vmSpec(cliDir, 'cli');
    // the RTC start is the moment of creation; everything else is the same machine
    delete fromApi.rtcEpochSec;
    delete fromCli.rtcEpochSec;
    assert.deepEqual(fromApi, fromCli);
    assert.deepEqual(fromApi.virtio, [{ type: 'blk', file: 'disks/vda.qcow2', format: 'qcow2', mode: 'rw' }]);
    assert.deepEqual(fromApi.nics?.map((n) => [n.model, n.net]), [['virtio-net-pci', 'user']]);
    assert.equal(virtualSize(join(d.dir, 'api.tsvm', 'disks', 'vda.qcow2')), 1 << 30);
    assert.equal(virtualSize(join(cliDir, 'cli.tsvm', 'disks', 'vda.qcow2')), 1 << 30);
  });

  await t.test("diskMiB sizes the data disk; network puts the NIC on a private network with a MAC kept in the folder", async () => {
    assert.equal((await d.api('POST', '/api/vms', { name: 'small', diskMiB: 256, memoryMiB: 64 })).status, 201);
    assert.equal(virtualSize(join(d.dir, 'small.tsvm', 'disks', 'vda.qcow2')), 256 << 20);
    assert.equal((await d.api('POST', '/api/vms', { name: 'onlab', network: 'lab' })).status, 201);
    const nics = vmSpec(d.dir, 'onlab').nics ?? [];
    assert.equal(nics.length, 1);
    assert.equal(nics[0].model, 'virtio-net-pci');
    assert.equal(nics[0].net, 'switch');
    assert.equal(nics[0].network, 'lab');
    assert.match(nics[0].mac ?? '', /^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  await t.test('bad create options are refused with what to write, and nothing is created', async () => {
    const before = readdirSync(d.dir).sort();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'x', diskMiB: 0 }, /diskMiB must be a whole number/],
      [{ name: 'x', diskMiB: 1.5 }, /diskMiB must be a whole number/],
      [{ name: 'x', network: '../etc' }, /network must be a private network's name/],
      [{ name: 'x', guest: 'firmware', diskMiB: 64 }, /diskMiB is for the default guest/],
      [{ name: 'x', guest: 'firmware', network: 'lab' }, /network is for the default guest/],
      [{ name: 'x', machine: { version: 1 }, guest: 'default' }, /guest describes a VM made from a guest; with a full machine spec, say it in the spec/],
    ];
    for (const [body, re] of cases) {
      const r = await d.api('POST', '/api/vms', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match((r.json as { error: { message: string } }).error.message, re);
    }
    assert.deepEqual(readdirSync(d.dir).sort(), before);
  });
});

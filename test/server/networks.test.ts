/**
 * The daemon's private networks: VMs whose spec names network X join a
 * switch the daemon serves at X's socket; another network is another switch;
 * networks.json gives a network a DHCP server. The daemon runs in this
 * process; the VMs are bare SeaBIOS (no Linux boot), so the frames are sent
 * by ports this test plugs into the daemon's switches, and the VMs' NICs show
 * as the ports the switch logs joining. Then the networks API of a `tsvm
 * serve` child: list, add, refusals, delete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderStore } from '../../src/server/store.js';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { VmHost } from '../../src/server/host.js';
import { nodeNetHost } from '../../src/host/node/net.js';
import { SocketNet } from '../../src/net/socket.js';
import { networkSocketPath } from '../../src/vmm/netspec.js';
import type { MachineSpec } from '../../src/vmm/spec.js';
import { buildIp4, buildUdp, get16, get32, parseIp4, put32, PROTO_UDP } from '../../src/net/wire.js';

async function until(what: string, ok: () => boolean, log: string[]): Promise<void> {
  for (let i = 0; i < 600 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ok(), `${what}; the daemon's log:\n${log.join('\n')}`);
}

async function plug(path: string, log: string[]) {
  const link = new SocketNet(nodeNetHost, { connect: { path } });
  const got: Uint8Array[] = [];
  link.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => {});
  await link.start();
  await until(`a port connected to ${path}`, () => link.connected, log);
  return { link, got };
}

test("daemon: VMs naming a private network join the daemon's switch for it; another network is another switch", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-dnet-'));
  process.env.TSVM_NET_DIR = mkdtempSync(join(tmpdir(), 'tsvm-dnet-sock-'));
  writeFileSync(join(dir, 'networks.json'), JSON.stringify({ lab: { dhcp: '10.0.7.0/24' } }));
  const log: string[] = [];
  const host = new VmHost(new FolderStore(dir), (l) => log.push(l));
  t.after(async () => {
    for (const n of host.runningNames()) await host.injectFault(n, 'terminate').catch(() => {});
    await host.networks.close();
  });
  const spec = (network: string, mac: string): MachineSpec => ({
    version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000,
    serial: 'none', debugcon: null, postcodes: null, nics: [{ model: 'e1000', net: 'switch', network, mac, hostfwd: [], restrict: false, dump: null }],
  });
  await host.create('a', spec('lab', '52:54:00:00:07:0a'));
  await host.create('b', spec('lab', '52:54:00:00:07:0b'));
  await host.create('c', spec('other', '52:54:00:00:07:0c'));
  for (const n of ['a', 'b', 'c']) host.start(n);

  // the daemon serves both networks; the VMs' NICs plug in (the DHCP server is lab's first port)
  await until("lab's switch holds its DHCP server and both VMs", () => log.some((l) => /^network 'lab': port \d+ \(peer \d+\) joined; 3 on the switch$/.test(l)), log);
  await until("other's switch holds VM c", () => log.some((l) => /^network 'other': port \d+ \(peer \d+\) joined; 1 on the switch$/.test(l)), log);
  assert.ok(log.includes("network 'lab': serving unix:" + networkSocketPath('lab') + ', DHCP 10.0.7.0/24 from 10.0.7.2, no router'), log.join('\n'));

  // two more ports on lab see each other's broadcasts; a port on other sees none of it
  const p1 = await plug(networkSocketPath('lab'), log);
  const p2 = await plug(networkSocketPath('lab'), log);
  const p3 = await plug(networkSocketPath('other'), log);
  try {
    const me = Uint8Array.from([0x52, 0x54, 0, 0, 0x07, 0x01]);
    const dhcp = new Uint8Array(300);
    dhcp.set([1, 1, 6], 0);
    put32(dhcp, 4, 0x1234);
    dhcp.set(me, 28);
    put32(dhcp, 236, 0x63825363);
    dhcp.set([53, 1, 1, 255], 240);
    p1.link.send(buildIp4(new Uint8Array(6).fill(0xff), me, 0, 0xffffffff, PROTO_UDP, buildUdp(0, 68, 0xffffffff, 67, dhcp)));
    await until('p2 saw the broadcast and p1 the offer', () => {
      p1.link.deliver();
      p2.link.deliver();
      return p2.got.length > 0 && p1.got.length > 0;
    }, log);
    const offer = p1.got[0];
    const ip = parseIp4(offer);
    assert.ok(ip && ip.proto === PROTO_UDP && get16(offer, ip.start + 2) === 68, 'a DHCP reply');
    assert.equal(get32(offer, ip.start + 8 + 16), 0x0a000702, 'the first lease of 10.0.7.0/24');
    await new Promise((r) => setTimeout(r, 300));
    p3.link.deliver();
    assert.equal(p3.got.length, 0, 'nothing from lab reached other');

    // a VM that stops leaves its network; the network stays for the others
    const states: string[] = [];
    host.on('event', (e) => e.type === 'state' && e.vm === 'c' && states.push(e.state));
    host.stop('c');
    await until("VM c stopped and left other's switch", () => states.includes('stopped') && log.some((l) => /^network 'other': port \d+ \(peer \d+\) left; 1 on the switch$/.test(l)), log);
  } finally {
    for (const p of [p1, p2, p3]) p.link.close();
  }
});

test('daemon API: networks listed, added (with DHCP or without), refused when malformed or taken, deleted only when no VM uses them', async (t) => {
  process.env.TSVM_NET_DIR = mkdtempSync(join(tmpdir(), 'tsvm-dnet-sock-'));
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  t.after(() => events.ws.close());
  const nets = async () => ((await d.api('GET', '/api/networks')).json as { networks: { name: string; dhcp: string | null; vms: string[]; served: boolean }[] }).networks;
  const refused = async (method: string, path: string, body: unknown, status: number, message: RegExp) => {
    const r = await d.api(method, path, body);
    assert.equal(r.status, status, r.text);
    assert.match((r.json as { error: { message: string } }).error.message, message);
  };
  const file = join(d.dir, 'networks.json');

  assert.deepEqual(await nets(), []);
  const lab = await d.api('POST', '/api/networks', { name: 'lab', dhcp: '10.0.7.0/24' });
  assert.equal(lab.status, 201, lab.text);
  assert.deepEqual(lab.json, { name: 'lab', dhcp: '10.0.7.0/24', vms: [], served: false });
  assert.equal((await d.api('POST', '/api/networks', { name: 'quiet' })).status, 201);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { lab: { dhcp: '10.0.7.0/24' }, quiet: {} }, 'networks.json holds both');
  await events.waitFor((e) => e.type === 'networks', 10_000, 'a networks event');

  // refusals change nothing
  await refused('POST', '/api/networks', { name: 'lab' }, 409, /already/);
  await refused('POST', '/api/networks', { name: '../x' }, 400, /not a network name/);
  await refused('POST', '/api/networks', { name: 'x', dhcp: '10.0.7.0' }, 400, /not a subnet like 10\.0\.3\.0\/24/);
  await refused('POST', '/api/networks', { name: 'x', dhcp: '10.0.7.0/24,gateway=1.2.3.4' }, 400, /router=ADDR and dns=ADDR/);
  await refused('POST', '/api/networks', { name: 'x', dhcp: 5 }, 400, /dhcp is a subnet/);
  await refused('POST', '/api/networks', { name: 'x', vlan: 3 }, 400, /unknown field 'vlan'/);
  await refused('DELETE', '/api/networks/nothere', undefined, 404, /no network 'nothere'/);
  await refused('DELETE', '/api/networks/a%2f..', undefined, 400, /not a network name/);
  assert.equal((await d.api('PUT', '/api/networks')).status, 405);
  assert.deepEqual((await nets()).map((n) => n.name), ['lab', 'quiet']);

  // a VM on lab, and one naming a network nobody declared: both listed with their VMs
  const machine = (network: string) => ({
    version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000,
    serial: 'none', debugcon: null, postcodes: null, nics: [{ model: 'e1000', net: 'switch', network, hostfwd: [], restrict: false, dump: null }],
  });
  assert.equal((await d.api('POST', '/api/vms', { name: 'a', machine: machine('lab') })).status, 201);
  assert.equal((await d.api('POST', '/api/vms', { name: 'b', machine: machine('adhoc') })).status, 201);
  assert.deepEqual(((await d.api('GET', '/api/vms/a')).json as { networks: string[] }).networks, ['lab']);
  assert.deepEqual(await nets(), [
    { name: 'adhoc', dhcp: null, vms: ['b'], served: false },
    { name: 'lab', dhcp: '10.0.7.0/24', vms: ['a'], served: false },
    { name: 'quiet', dhcp: null, vms: [], served: false },
  ]);
  await refused('POST', '/api/networks', { name: 'adhoc' }, 409, /VM b uses it/);
  await refused('DELETE', '/api/networks/lab', undefined, 409, /used by VM a/);

  // a started VM brings its network's switch up
  assert.equal((await d.api('POST', '/api/vms/a/start')).status, 200);
  await events.waitFor((e) => e.type === 'state' && e.vm === 'a' && e.state === 'running', 60_000, 'VM a running');
  for (let i = 0; i < 100 && !(await nets()).find((n) => n.name === 'lab')?.served; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await nets()).find((n) => n.name === 'lab')?.served, true, "the daemon serves lab's switch");
  assert.equal((await d.api('POST', '/api/vms/a/stop')).status, 200);
  await events.waitFor((e) => e.type === 'state' && e.vm === 'a' && e.state === 'stopped', 60_000, 'VM a stopped');

  // once its VMs are gone a network can go; an undeclared one goes with its last VM
  assert.equal((await d.api('DELETE', '/api/vms/a')).status, 204);
  assert.equal((await d.api('DELETE', '/api/vms/b')).status, 204);
  assert.equal((await d.api('DELETE', '/api/networks/lab')).status, 204);
  assert.deepEqual(await nets(), [{ name: 'quiet', dhcp: null, vms: [], served: false }]);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { quiet: {} });

  // a networks.json that is not JSON is named in a 409 and never overwritten
  writeFileSync(file, '{ "quiet": ');
  await refused('GET', '/api/networks', undefined, 409, /networks\.json is not valid JSON.*fix or remove it/);
  await refused('POST', '/api/networks', { name: 'new' }, 409, /not valid JSON/);
  assert.equal(readFileSync(file, 'utf8'), '{ "quiet": ', 'the file is as it was');
  await d.child.waitFor(/refused POST \/api\/networks from \S+: 409 conflict: [^\n]*not valid JSON/, 0, 5000, 'the refusal in the log');
});

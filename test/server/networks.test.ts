/**
 * The daemon's private networks: VMs whose spec names network X join a
 * switch the daemon serves at X's socket; another network is another switch;
 * networks.json gives a network a DHCP server. The daemon runs in this
 * process; the VMs are bare SeaBIOS (no Linux boot), so the frames are sent
 * by ports this test plugs into the daemon's switches, and the VMs' NICs show
 * as the ports the switch logs joining.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderStore } from '../../src/server/store.js';
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

// Two default guests in two `tsvm run` processes on one private switch, as a
// user sets it up: `tsvm switch -listen unix:PATH -dhcp 10.0.3.0/24` in a
// third process, and `-nic switch,path=PATH` on each VM. The guests get
// their addresses from the switch's DHCP server at boot, ping each other, and
// copy a host file over TCP with busybox nc: VM A reads it from a read-only
// 9p share of a host folder, VM B writes what it received to its own share;
// the host compares B's sha256sum and the bytes with the original.
// A port this test plugs into a second switch (a "third VM" made of frames,
// to spare a third boot) asks for both guests' addresses by ARP and hears
// nothing, while the same question on the guests' switch is answered.
// VM A has the default NIC model (nothing here depends on which it is); VM B
// an NE2000 (ne2k_pci, the RTL8029), so the same traffic checks that card.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TsvmChild, pingLine } from '../helpers/child.js';
import { nodeNetHost } from '../../src/host/node/net.js';
import { SocketNet } from '../../src/net/socket.js';
import { get16, get32, ip4, put16, put32 } from '../../src/net/wire.js';

const SIZE = 512 * 1024;

/** A NIC in this process, plugged into the switch at `path`: sends ARP requests, collects replies. */
async function probe(path: string) {
  const link = new SocketNet(nodeNetHost, { connect: { path } });
  const got: Uint8Array[] = [];
  link.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => {});
  await link.start();
  for (let i = 0; i < 500 && !link.connected; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(link.connected, `the probe connected to ${path}`);
  const me = Uint8Array.from([0x52, 0x54, 0x00, 0xee, 0xee, path.length & 0xff]);
  return {
    link,
    /** Ask who has `ip`; resolves with the answering MAC, or null after `ms`. */
    async arp(ip: string, ms: number): Promise<string | null> {
      const f = new Uint8Array(60);
      f.fill(0xff, 0, 6);
      f.set(me, 6);
      put16(f, 12, 0x0806);
      f.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
      f.set(me, 22);
      put32(f, 28, ip4('10.0.3.250'));
      put32(f, 38, ip4(ip));
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        link.send(f);
        for (let i = 0; i < 50; i++) {
          await new Promise((r) => setTimeout(r, 10));
          link.deliver();
          const ans = got.find((g) => get16(g, 12) === 0x0806 && get16(g, 20) === 2 && get32(g, 28) === ip4(ip));
          if (ans) return Array.from(ans.subarray(22, 28), (b) => b.toString(16).padStart(2, '0')).join(':');
        }
      }
      return null;
    },
    /** Every frame that reached this port, as MACs of their senders. */
    senders(): string[] {
      link.deliver();
      return got.map((g) => Array.from(g.subarray(6, 12), (b) => b.toString(16).padStart(2, '0')).join(':'));
    },
  };
}

test('two default guests in two tsvm processes on a private switch (one on an NE2000): DHCP from the switch, ping, a file over TCP with nc; another switch sees nothing', { timeout: 1_800_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-swg-'));
  const sock = join(dir, 'lab.sock');
  const other = join(dir, 'other.sock');
  const shareA = join(dir, 'a');
  const shareB = join(dir, 'b');
  mkdirSync(shareA);
  mkdirSync(shareB);
  const data = Buffer.alloc(SIZE);
  for (let i = 0, x = 12345; i < SIZE; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  writeFileSync(join(shareA, 'src.bin'), data);
  const sha = createHash('sha256').update(data).digest('hex');

  const sw = new TsvmChild(['switch', '-listen', `unix:${sock}`, '-dhcp', '10.0.3.0/24']);
  const sw2 = new TsvmChild(['switch', '-listen', `unix:${other}`, '-dhcp', '10.0.3.0/24']);
  const vms: TsvmChild[] = [];
  try {
    await sw.waitFor(/serving unix:.*lab\.sock, DHCP 10\.0\.3\.0\/24 from 10\.0\.3\.2, no router/, 0, 60_000, 'the switch banner');
    await sw2.waitFor(/serving unix:.*other\.sock/, 0, 60_000, 'the second switch banner');
    const vm = (nic: string, share: string, ro: boolean) => {
      const c = new TsvmChild(['run', '-timeout', '1500', '-nic', `switch,path=${sock},${nic}`, '-virtfs', `local,path=${share},mount_tag=host,security_model=none${ro ? ',readonly=on' : ''}`]);
      if (c.child.pid) setPriority(c.child.pid, 10); // two boots at once on a shared machine: be nice
      vms.push(c);
      return c;
    };
    const a = vm('mac=52:54:00:00:03:0a', shareA, true);
    const b = vm('mac=52:54:00:00:03:0b,model=ne2k_pci', shareB, false);
    await Promise.all([a.waitFor(PROMPT, 0, 1_200_000, 'the shell prompt of VM A'), b.waitFor(PROMPT, 0, 1_200_000, 'the shell prompt of VM B')]);

    // addresses from the switch's DHCP server at boot, without a router
    const addr = (c: TsvmChild, who: string) => {
      const m = /network: eth0 (10\.0\.3\.\d+) via , DNS/.exec(c.out);
      assert.ok(m, `${who} got an address from the switch's DHCP server; its console:\n${c.tail()}`);
      return m[1];
    };
    const ipA = addr(a, 'VM A');
    const ipB = addr(b, 'VM B');
    assert.notEqual(ipA, ipB);
    assert.match(await b.shell('cat /sys/class/net/eth0/device/vendor /sys/class/net/eth0/device/device; readlink /sys/class/net/eth0/device/driver'), /0x10ec\s+0x8029\s+.*ne2k-pci/, 'B is on the NE2000, driven by ne2k-pci');
    assert.doesNotMatch(await a.shell('route -n'), /^0\.0\.0\.0/m, 'no default route: the switch offers no gateway');

    // they see each other
    assert.match(await a.shell(pingLine(ipB, 3)), /PINGS 3\/3/);
    assert.match(await b.shell(pingLine(ipA, 2)), /PINGS 2\/2/);

    // a host file over TCP: A reads it from its share, B receives it with nc and writes it to its own share
    assert.match(await a.shell('mkdir -p /h && mount -t 9p -o trans=virtio,ro host /h && ls -l /h/src.bin'), new RegExp(`\\b${SIZE}\\b.*src\\.bin`));
    assert.match(await b.shell('mkdir -p /h && mount -t 9p -o trans=virtio host /h && echo MOUNTED'), /MOUNTED/);
    // nc's stdin is a pipe that stays open and empty: a background job reading the console stops
    // on SIGTTIN as soon as the test types its next line (it did, mid-transfer)
    await b.shell('sleep 3600 | nc -l -p 5000 > /tmp/got &');
    // A connects only once B's nc listens (on a loaded host the background job can take a while to bind;
    // a connection refused before that left B with nothing): port 5000 is 1388 in /proc/net/tcp, state 0A is LISTEN
    const listening = await b.shell(`i=0; while ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1388 0*:0000 0A' && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -c ':1388 0*:0000 0A'`);
    assert.match(listening, /^[1-9]\d*$/m, `B's nc listens on port 5000: ${listening}`);
    await a.shell(`nc ${ipB} 5000 < /h/src.bin &`);
    // however this busybox's nc ends a connection, the whole file is there once B holds SIZE bytes
    const sum = await b.shell(`i=0; while [ $(wc -c < /tmp/got) -lt ${SIZE} ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done; wc -c < /tmp/got; sha256sum /tmp/got; cp /tmp/got /h/got.bin && sync && echo COPIED`, 900_000);
    assert.match(sum, new RegExp(`^${SIZE}$`, 'm'), `B received ${SIZE} bytes: ${sum}`);
    assert.match(sum, new RegExp(`^${sha}  /tmp/got$`, 'm'), "the guest's sha256sum of what B received is the host file's");
    assert.match(sum, /COPIED/);
    assert.ok(readFileSync(join(shareB, 'got.bin')).equals(data), 'the file B wrote to its share is the host file, byte for byte');
    await a.shell('killall nc 2>/dev/null; true');
    await b.shell('killall nc sleep 2>/dev/null; true');

    // a machine on another switch sees nothing of them; on their switch the same question is answered
    const near = await probe(sock);
    const far = await probe(other);
    assert.equal(await near.arp(ipB, 20_000), '52:54:00:00:03:0b', 'B answers ARP on its own switch');
    assert.equal(await far.arp(ipA, 3_000), null, 'A is not reachable from another switch');
    assert.equal(await far.arp(ipB, 3_000), null, 'B is not reachable from another switch');
    assert.deepEqual(far.senders(), [], 'nothing of the two guests reached the other switch');
    near.link.close();
    far.link.close();

    for (const [c, who] of [[a, 'A'], [b, 'B']] as const) {
      await c.shell('poweroff', 300_000).catch(() => '');
      assert.equal(await c.exit(300_000), 0, `VM ${who} powered off cleanly; its last output:\n${c.tail()}`);
    }
    assert.match(sw.out, /port \d+ \(peer \d+\) joined; 3 on the switch/, 'the switch logged both VMs joining');
  } finally {
    for (const c of vms) c.kill();
    sw.kill();
    sw2.kill();
  }
});

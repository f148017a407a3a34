// QEMU, the reference, joins a tsvm switch: Debian's qemu-system-i386 boots
// the default guest's kernel and initrd with `-netdev stream,server=off,
// addr.type=unix,addr.path=SOCKET` (QEMU's own spelling) plugged into a
// `tsvm switch -dhcp`. The guest's DHCP exchange with the switch's server
// crosses the stream both ways, and a port this test plugs into the same
// switch gets the QEMU guest's ARP answer: the framing is QEMU's.
// QEMU is a host program (the reference), not a guest binary run on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsvmChild } from '../helpers/child.js';
import { nodeNetHost } from '../../src/host/node/net.js';
import { SocketNet } from '../../src/net/socket.js';
import { findDefaultImage } from '../../src/vmm/image.js';
import { get16, get32, ip4, put16, put32 } from '../../src/net/wire.js';

const haveQemu = spawnSync('qemu-system-i386', ['--version']).status === 0;

test('a QEMU guest joins a tsvm switch with -netdev stream: DHCP from the switch, ARP answered to a tsvm port', { skip: haveQemu ? false : 'qemu-system-i386 is not installed (Debian package qemu-system-x86)', timeout: 900_000 }, async () => {
  const img = findDefaultImage();
  assert.ok(img, 'the default guest image is built (test/run.js builds it)');
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-swq-'));
  const sock = join(dir, 'lab.sock');
  const sw = new TsvmChild(['switch', '-listen', `unix:${sock}`, '-dhcp', '10.0.5.0/24']);
  let out = '';
  let exited: string | null = null;
  // QEMU 7.2 does not retry a stream: it starts once the switch listens
  const startQemu = () => {
    const q = spawn('nice', ['-n', '10', 'qemu-system-i386', '-accel', 'tcg', '-m', '128', '-kernel', (img as { kernel: string }).kernel, '-initrd', (img as { initrd: string }).initrd, '-append', (img as { cmdline: string }).cmdline, '-nographic', '-no-reboot', '-monitor', 'none',
      '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`, '-device', 'e1000,netdev=n0,mac=52:54:00:00:05:0a'], { stdio: ['pipe', 'pipe', 'pipe'] });
    q.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    q.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
    q.on('exit', (code, sig) => (exited = sig ?? `exit status ${code}`));
    return q;
  };
  let qemu: ReturnType<typeof spawn> | null = null;
  const waitFor = async (re: RegExp, limitMs: number, what: string) => {
    const deadline = Date.now() + limitMs;
    while (!re.test(out)) {
      if (exited) assert.fail(`QEMU ended (${exited}) before ${what}; its output:\n${out.slice(-3000)}`);
      if (Date.now() > deadline) assert.fail(`no ${what} within ${limitMs / 1000} s; QEMU's output:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const link = new SocketNet(nodeNetHost, { connect: { path: sock } });
  try {
    await sw.waitFor(/serving unix:/, 0, 60_000, 'the switch banner');
    qemu = startQemu();
    await waitFor(/network: eth0 (10\.0\.5\.\d+) via , DNS/, 600_000, "the QEMU guest's DHCP lease from the switch");
    const ip = (/network: eth0 (10\.0\.5\.\d+) via/.exec(out) as RegExpExecArray)[1];
    assert.equal(ip, '10.0.5.2');

    const got: Uint8Array[] = [];
    link.attach({ canReceive: () => true, receive: (f) => got.push(f) }, () => {});
    await link.start();
    const me = Uint8Array.from([0x52, 0x54, 0, 0xee, 0, 1]);
    const req = new Uint8Array(60);
    req.fill(0xff, 0, 6);
    req.set(me, 6);
    put16(req, 12, 0x0806);
    req.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
    req.set(me, 22);
    put32(req, 28, ip4('10.0.5.99'));
    put32(req, 38, ip4(ip));
    let answer: Uint8Array | undefined;
    for (let i = 0; i < 300 && !answer; i++) {
      if (link.connected && i % 20 === 0) link.send(req);
      await new Promise((r) => setTimeout(r, 50));
      link.deliver();
      answer = got.find((g) => get16(g, 12) === 0x0806 && get16(g, 20) === 2 && get32(g, 28) === ip4(ip));
    }
    assert.ok(answer, `the QEMU guest answered ARP for ${ip}; QEMU's output:\n${out.slice(-2000)}`);
    assert.deepEqual(Array.from(answer.subarray(22, 28)), [0x52, 0x54, 0, 0, 5, 0x0a]);
  } finally {
    link.close();
    qemu?.kill('SIGKILL');
    sw.kill();
  }
});

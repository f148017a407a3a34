/**
 * The private network's frame path on the host, without guests: how many
 * full-size Ethernet frames (1514 bytes) per second go from one VM's
 * network backend to another's
 *  - baseline: the direct point-to-point link (`-netdev socket`, one TCP
 *    connection on loopback, both ends in this process);
 *  - through a `tsvm switch` in its own process, over a UNIX socket and
 *    over loopback TCP (two hops: VM A -> switch -> VM B);
 *  - through a switch in this process (SwitchLink to SwitchLink, no socket:
 *    the switch's own forwarding cost, what VMs of one process pay).
 * The sender keeps a window of WINDOW frames in flight (the switch's per-port
 * limit is 4 MiB). A guest's NIC is far slower than any of these rows, so
 * they say how much of a VM-to-VM transfer the switch can ever cost.
 * Usage: node dist/bench/switch.js [frames, default 200000]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeNetHost } from '../src/host/node/net.js';
import { SocketNet, type StreamAddr } from '../src/net/socket.js';
import { EthSwitch, SwitchLink } from '../src/net/switch.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const FRAMES = Number(process.argv[2] ?? 200_000);
const WINDOW = 1000;
const SIZE = 1514;

interface End {
  send(f: Uint8Array): void;
  deliver(): void;
  attach(p: { canReceive(): boolean; receive(f: Uint8Array): void }, w: () => void): void;
}

function frameFor(dst: number, src: number): Uint8Array {
  const f = new Uint8Array(SIZE);
  f.set([0x52, 0x54, 0, 0, 0, dst], 0);
  f.set([0x52, 0x54, 0, 0, 0, src], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

/** Frames per second from a to b, with WINDOW in flight. */
async function run(a: End, b: End): Promise<number> {
  let got = 0;
  b.attach({ canReceive: () => true, receive: () => void got++ }, () => {});
  a.attach({ canReceive: () => true, receive: () => {} }, () => {});
  // b announces itself so the switch learns it (then A's frames are unicast, not flooded)
  b.send(frameFor(0xff, 2));
  const f = frameFor(2, 1);
  const t0 = process.hrtime.bigint();
  let sent = 0;
  while (got < FRAMES) {
    while (sent < FRAMES && sent - got < WINDOW) {
      a.send(f);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
    b.deliver();
    a.deliver();
  }
  return (FRAMES * 1e9) / Number(process.hrtime.bigint() - t0);
}

async function connected(...links: SocketNet[]): Promise<void> {
  for (let i = 0; i < 500 && !links.every((l) => l.connected); i++) await new Promise((r) => setTimeout(r, 10));
  if (!links.every((l) => l.connected)) throw new Error('the links did not connect');
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function viaSwitchProcess(at: StreamAddr, listen: string): Promise<number> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tsvm.js'), 'switch', '-listen', listen, '-quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r, j) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('serving') && r());
    child.once('exit', (c) => j(new Error(`tsvm switch exited (${c})`)));
  });
  const a = new SocketNet(nodeNetHost, { connect: at });
  const b = new SocketNet(nodeNetHost, { connect: at });
  await a.start();
  await b.start();
  await connected(a, b);
  try {
    return await run(a, b);
  } finally {
    a.close();
    b.close();
    child.kill('SIGINT');
  }
}

const rows: [string, number][] = [];
{
  const port = await freePort();
  const a = new SocketNet(nodeNetHost, { listen: { addr: '127.0.0.1', port } });
  const b = new SocketNet(nodeNetHost, { connect: { addr: '127.0.0.1', port } });
  await a.start();
  await b.start();
  await connected(a, b);
  rows.push(['baseline: -netdev socket, direct TCP link', await run(a, b)]);
  a.close();
  b.close();
}
const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-sw-'));
const sock = join(dir, 'sw.sock');
rows.push(['tsvm switch process, UNIX socket', await viaSwitchProcess({ path: sock }, `unix:${sock}`)]);
const port = await freePort();
rows.push(['tsvm switch process, loopback TCP', await viaSwitchProcess({ addr: '127.0.0.1', port }, `tcp:127.0.0.1:${port}`)]);
{
  const sw = new EthSwitch();
  rows.push(['switch in this process (SwitchLink)', await run(new SwitchLink(sw, 'a'), new SwitchLink(sw, 'b'))]);
}

const base = rows[0][1];
console.log(`bench/switch: ${FRAMES} frames of ${SIZE} bytes, window ${WINDOW}; ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(1)}`);
console.log('| path | frames/s | MB/s | vs baseline |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, fps] of rows) console.log(`| ${name} | ${Math.round(fps)} | ${((fps * SIZE) / 1e6).toFixed(1)} | ${(fps / base).toFixed(2)}x |`);

// The default guest on the user-mode network, as a user meets it: `tsvm run
// -nic user,model=e1000,hostfwd=...` plus a packet dump. One boot checks that
// the guest got its address by DHCP at boot, fetches a page with wget from an
// HTTP server this test runs on 127.0.0.1 (reached as the gateway 10.0.2.2),
// resolves a name from the host's /etc/hosts through the DNS server 10.0.2.3,
// pings the gateway, and serves a page with busybox httpd that the host
// fetches through the forwarded port; then that tcpdump reads the pcap.
// Everything talks only to servers on this machine's loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TsvmChild, pingLine } from '../helpers/child.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function fetchText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rq = get({ host: '127.0.0.1', port, path, timeout: 120_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    rq.on('timeout', () => rq.destroy(new Error('timed out')));
    rq.on('error', reject);
  });
}

/** A name the host resolves from /etc/hosts (localhost at least), with the address it gives. */
function hostsName(): string {
  const lines = readFileSync('/etc/hosts', 'utf8').split('\n');
  for (const l of lines) {
    const [addr, ...names] = l.replace(/#.*/, '').trim().split(/\s+/);
    if (addr === '127.0.0.1' && names.length) return names.find((n) => n !== 'localhost') ?? names[0];
  }
  return 'localhost';
}

test('the default guest on -nic user: DHCP at boot, wget through the gateway, DNS from /etc/hosts, hostfwd to httpd, pcap', { timeout: 1_800_000 }, async () => {
  const page = `hello from the host ${process.pid}\n`;
  const big = Buffer.alloc(300 * 1024, 0);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
  const http = createHttpServer((rq, res) => res.end(rq.url === '/big' ? big : page));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const httpPort = (http.address() as AddressInfo).port;
  const fwdPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-net-'));
  const pcap = join(dir, 'net.pcap');
  const s = new TsvmChild(['run', '-timeout', '1500', '-nic', `user,model=e1000,id=n0,hostfwd=tcp:127.0.0.1:${fwdPort}-:8080`, '-object', `filter-dump,id=d0,netdev=n0,file=${pcap}`]);
  const run = (cmd: string) => s.shell(cmd);
  try {
    await s.waitFor(PROMPT, 0, 1_200_000, 'the shell prompt');
    // DHCP at boot, by the image's init
    assert.match(s.out, /network: eth0 10\.0\.2\.15 via 10\.0\.2\.2, DNS 10\.0\.2\.3/);
    const addr = await run('ifconfig eth0; route -n; cat /etc/resolv.conf');
    assert.match(addr, /inet addr:10\.0\.2\.15\s+Bcast:[\d.]+\s+Mask:255\.255\.255\.0/);
    assert.match(addr, /^0\.0\.0\.0\s+10\.0\.2\.2\s+0\.0\.0\.0\s+UG/m);
    assert.match(addr, /nameserver 10\.0\.2\.3/);

    // ICMP echo to the gateway
    assert.match(await run(pingLine('10.0.2.2', 2)), /PINGS 2\/2/);

    // an HTTP server on the host's 127.0.0.1, as the gateway
    const got = await run(`wget -q -O - http://10.0.2.2:${httpPort}/index.html`);
    assert.ok(got.includes(page.trim()), `wget printed: ${got}`);

    // a name from the host's /etc/hosts, through the gateway's DNS (a loopback name resolves to the gateway)
    const name = hostsName();
    const ns = await run(`nslookup ${name} 10.0.2.3`);
    assert.match(ns, /Address:? (1: )?10\.0\.2\.2/, `nslookup printed: ${ns}`);
    assert.match(await run('nslookup no-such-name.invalid 10.0.2.3; echo status=$?'), /NXDOMAIN|can't resolve|status=1/);

    // a server in the guest, reached from the host through the forwarded port
    await run(`mkdir -p /tmp/www && echo "guest page $((6*7))" > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && echo started`);
    assert.equal(await fetchText(fwdPort, '/index.html'), '200 guest page 42\n');

    // a larger transfer each way: 300 KiB from the host (window, segments), 200 KiB to the host (TSO)
    const md5 = await run(`wget -q -O /tmp/big http://10.0.2.2:${httpPort}/big && md5sum /tmp/big`);
    assert.match(md5, new RegExp(`^${createHash('md5').update(big).digest('hex')}  /tmp/big$`, 'm'));
    await run('seq 1 30000 > /tmp/www/seq && echo ok');
    const seqBody = await fetchText(fwdPort, '/seq');
    assert.equal(seqBody, '200 ' + Array.from({ length: 30000 }, (_, i) => `${i + 1}\n`).join(''));

    await s.shell('poweroff', 300_000).catch(() => '');
    assert.equal(await s.exit(300_000), 0, s.tail());
  } finally {
    s.kill();
    http.close();
  }
  // the dump: tcpdump reads it and shows the DHCP exchange, the DNS query and the HTTP connection
  assert.ok(statSync(pcap).size > 24);
  const td = spawnSync('tcpdump', ['-nn', '-r', pcap], { encoding: 'utf8' });
  assert.equal(td.error, undefined, 'tcpdump must be installed (tools/setup.sh installs it)');
  assert.equal(td.status, 0, td.stderr);
  assert.match(td.stdout, /10\.0\.2\.2\.67 > 255\.255\.255\.255\.68: BOOTP\/DHCP, Reply/);
  assert.match(td.stdout, /10\.0\.2\.15\.\d+ > 10\.0\.2\.3\.53: \d+\+ A\?/);
  assert.match(td.stdout, new RegExp(`10\\.0\\.2\\.15\\.\\d+ > 10\\.0\\.2\\.2\\.${httpPort}: Flags \\[S\\]`));
  assert.match(td.stdout, /ICMP echo reply/);
});

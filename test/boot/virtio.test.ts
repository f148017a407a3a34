// The virtio devices as a user meets them: `tsvm run` with -drive if=virtio,
// two -virtfs shares (one readonly=on), -device virtio-rng-pci and a
// virtconsole, booting the default guest. The guest writes files on the
// virtio-blk disk (an ext2 file system the test made) and on the 9p share,
// and the test reads them back on the host byte for byte; a 9p path that
// tries to leave the share is refused; /dev/hwrng gives bytes; /dev/hvc0
// reaches the host. One boot for all of it (the machine has 2 shared cores).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsvmChild } from '../helpers/child.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const SEQ = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');

function debugfsDump(image: string, file: string, out: string): Buffer {
  const r = spawnSync('debugfs', ['-R', `dump ${file} ${out}`, image], { encoding: 'utf8' });
  assert.equal(r.status, 0, `debugfs failed: ${r.stderr}`);
  assert.ok(existsSync(out), `debugfs found no ${file} on the disk: ${r.stderr}`);
  return readFileSync(out);
}

test('virtio-blk, virtio-9p, virtio-rng and virtio-console in the default guest', { timeout: 1_800_000 }, async () => {
  const top = mkdtempSync(join(tmpdir(), 'tsvm-virtio-'));
  const share = join(top, 'share');
  const ro = join(top, 'ro');
  mkdirSync(share);
  mkdirSync(ro);
  const input = randomBytes(300 * 1024);
  writeFileSync(join(share, 'in.bin'), input);
  writeFileSync(join(ro, 'keep.txt'), 'keep me\n');
  const secret = `host-secret-${randomBytes(8).toString('hex')}`;
  writeFileSync(join(top, 'secret.txt'), secret);
  symlinkSync('..', join(share, 'up'));
  symlinkSync(join(top, 'secret.txt'), join(share, 'abs'));
  const disk = join(top, 'disk.img');
  const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext2', disk, '16M'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `mke2fs: ${mk.stderr}`);
  const con = join(top, 'hvc0.txt');
  const sock = join(top, 'hvc1.sock');
  let fromHvc1 = '';

  // an HTTP server on the host's loopback, which the guest reaches as the gateway 10.0.2.2
  const body = `page-for-the-guest-${process.pid}`;
  const server = createServer((_req, res) => res.end(body + '\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const http = { port: (server.address() as AddressInfo).port, body };
  after(() => server.close());

  const vm = new TsvmChild([
    'run',
    '-drive', `file=${disk},if=virtio`,
    '-virtfs', `local,path=${share},mount_tag=share0,security_model=none`,
    '-virtfs', `local,path=${ro},mount_tag=ro0,security_model=none,readonly=on`,
    '-device', 'virtio-rng-pci',
    '-netdev', 'user,id=n0',
    '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'virtio-serial-pci',
    '-device', 'virtconsole,chardev=c0',
    '-chardev', `file,id=c0,path=${con}`,
    '-device', 'virtconsole,chardev=c1',
    '-chardev', `socket,id=c1,path=${sock},server=on,wait=off`,
    '-timeout', '1700',
  ]);
  try {
    await vm.waitFor(/(^|\n)tsvm:[^\n]*# /, 0, 1_200_000, 'the shell prompt');
    // the default guest mounts the first virtio disk on /data at boot (an ext2 disk: as it is)
    assert.match(vm.out, /data disk: \/dev\/vda mounted on \/data \(rw\)/);
    let out = await vm.shell('mkdir -p /d /s /r && mount /dev/vda /d && mount -t 9p -o trans=virtio share0 /s && mount -t 9p -o trans=virtio ro0 /r && echo MOUNTED');
    assert.match(out, /\nMOUNTED/);
    // (seq writes line by line: made in /tmp and copied, rather than 20000 9p round trips)
    out = await vm.shell('seq 1 20000 > /tmp/seq.txt && cp /tmp/seq.txt /s/ && cp /tmp/seq.txt /d/ && cp /s/in.bin /d/out.bin && cp /s/in.bin /s/out.bin && sync && umount /d && echo WRITTEN', 600_000);
    assert.match(out, /\nWRITTEN/);
    // leaving the share: a host symlink to the share's parent, and an absolute one, resolve inside the guest
    out = await vm.shell('cat /s/up/secret.txt; cat /s/abs; ls /s/up/');
    assert.match(out, /can't open '\/s\/up\/secret.txt': No such file or directory/);
    assert.ok(!out.includes(secret), 'the host file outside the share reached the guest');
    out = await vm.shell('echo x > /r/new.txt; rm /r/keep.txt; cat /r/keep.txt');
    assert.match(out, /Read-only file system/);
    assert.match(out, /keep me/);
    out = await vm.shell('cat /sys/class/misc/hw_random/rng_current; head -c 64 /dev/hwrng | od -An -tx1 | wc -w');
    assert.match(out, /virtio_rng\.0/);
    assert.match(out, /^\s*64\s*$/m);
    // virtio-net on the user network: the address came from DHCP at boot; the gateway answers, and a page served here comes through
    out = await vm.shell(`ls /sys/bus/virtio/drivers/virtio_net/ | grep -c virtio; ifconfig eth0 | grep 'inet addr'; ping -c 1 10.0.2.2 | grep -c 'bytes from'; wget -q -O - http://10.0.2.2:${http.port}/page.txt`);
    assert.match(out, /^1$/m, 'virtio_net bound one device');
    assert.match(out, /inet addr:10\.0\.2\.15\b/);
    assert.match(out, /^1\n/m);
    assert.match(out, new RegExp(http.body));
    await vm.shell('echo hvc-says-hi > /dev/hvc0');
    // the second console, both ways, through the UNIX socket
    const client = createConnection(sock);
    client.on('data', (b) => (fromHvc1 += b.toString('latin1')));
    await new Promise<void>((res, rej) => client.on('connect', res).on('error', rej));
    await vm.shell('stty -F /dev/hvc1 -echo; (head -n1 /dev/hvc1 > /tmp/hvc1.txt) &');
    client.write('typed-at-hvc1\n');
    out = await vm.shell('sleep 2; cat /tmp/hvc1.txt; echo back-to-host > /dev/hvc1');
    assert.match(out, /\ntyped-at-hvc1\n/);
    client.end();
    vm.child.stdin.write('poweroff\n');
    assert.equal(await vm.exit(300_000), 0, `tsvm did not power off cleanly:\n${vm.tail()}`);
  } finally {
    vm.kill();
  }
  assert.ok(Buffer.from(readFileSync(join(share, 'out.bin'))).equals(input), '9p: the copy the guest wrote differs');
  assert.equal(readFileSync(join(share, 'seq.txt'), 'utf8'), SEQ);
  assert.ok(debugfsDump(disk, '/out.bin', join(top, 'out.bin')).equals(input), 'virtio-blk: the copy on the disk differs');
  assert.equal(debugfsDump(disk, '/seq.txt', join(top, 'seq.txt')).toString(), SEQ);
  assert.ok(!existsSync(join(ro, 'new.txt')) && existsSync(join(ro, 'keep.txt')), 'readonly=on share changed');
  assert.match(readFileSync(con, 'utf8'), /hvc-says-hi/);
  assert.match(fromHvc1, /back-to-host/);
  rmSync(top, { recursive: true, force: true });
});

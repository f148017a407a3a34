// savevm in the middle of the default guest's I/O, as a user does it from
// the monitor: a VM folder of the default guest (virtio-net on the user-mode
// network, the data disk on virtio-blk) runs two loops in the background, one
// fetching a file over HTTP from a server this test runs on 127.0.0.1 (the
// gateway 10.0.2.2), one writing and syncing a file on /data. savevm while
// both run, let them run on, loadvm: the guest carries on from the snapshot
// with both virtio devices mid-stream (their queues, MSI-X and the
// transport's registers all come back from their declared state). Then the
// network and the disk must still work: a fresh download whose checksum
// matches the host's, written to /data and read back from the disk (page
// cache dropped), and no I/O error or device reset in the kernel's log.
// Everything talks only to this machine's loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, TSVM, TsvmChild } from '../helpers/child.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvm-snapio-'));

test('savevm while virtio-net and virtio-blk are busy, loadvm: the network and the disk go on working', { timeout: 2_400_000 }, async () => {
  const big = Buffer.alloc(2 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 13 + (i >> 11) * 7) & 0xff;
  const sum = createHash('md5').update(big).digest('hex');
  const http = createHttpServer((_rq, res) => res.end(big));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  const url = `http://10.0.2.2:${port}/big`;

  const c = spawnSync(process.execPath, [TSVM, 'create', 'box', '--dir', dir], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(c.status, 0, c.stderr);
  const vm = new TsvmChild(['start', join(dir, 'box.tsvm'), '-timeout', '2000']);
  try {
    await vm.waitFor(PROMPT, 0, 1_800_000, 'the shell prompt');
    assert.match(vm.out, /data disk: \/dev\/vda mounted on \/data/);
    // the two loops, their pids kept so that the restored guest can stop them
    await vm.shell(`(while true; do wget -q -O /dev/null ${url}; done) >/dev/null 2>&1 & echo $! > /tmp/net.pid`);
    await vm.shell('(while true; do dd if=/dev/urandom of=/data/churn bs=64k count=16 2>/dev/null; sync; done) >/dev/null 2>&1 & echo $! > /tmp/disk.pid');
    // both are moving: bytes received on eth0 and writes completed on vda grow
    const counters = async () => {
      const t = await vm.shell("grep eth0 /proc/net/dev | tr -s ' ' | cut -d: -f2 | cut -d' ' -f2; cut -c1-200 /sys/block/vda/stat | tr -s ' ' | cut -d' ' -f6");
      const n = t.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
      assert.equal(n.length, 2, `counters: ${t}`);
      return n;
    };
    const [rx0, wr0] = await counters();
    await vm.shell('sleep 2');
    const [rx1, wr1] = await counters();
    assert.ok(rx1 > rx0 + 100_000, `eth0 received ${rx1 - rx0} bytes in 2 s`);
    assert.ok(wr1 > wr0, 'no writes completed on vda in 2 s');

    assert.match(await vm.monitor('savevm busy', /snapshot busy saved|savevm:.*/), /snapshot busy saved/);
    await vm.shell('sleep 2');
    assert.match(await vm.monitor('loadvm busy', /back at snapshot busy|loadvm:.*/), /back at snapshot busy/);
    // the restored guest: the loops are running again (they were at the save); stop them
    const after = vm.out.length;
    await vm.shell('kill $(cat /tmp/net.pid) $(cat /tmp/disk.pid); sleep 1; killall -q wget dd; sleep 1; echo stopped');

    // a fresh download over virtio-net, checked against the host's checksum
    const got = await vm.shell(`wget -q -O /tmp/big ${url} && md5sum /tmp/big`, 600_000);
    assert.match(got, new RegExp(`^${sum}\\s+/tmp/big$`, 'm'), `the download after loadvm:\n${got}`);
    // through virtio-blk to the disk and back from it, not from the page cache
    const disk = await vm.shell('cp /tmp/big /data/after.bin && sync && echo 3 > /proc/sys/vm/drop_caches && md5sum /data/after.bin', 600_000);
    assert.match(disk, new RegExp(`^${sum}\\s+/data/after\\.bin$`, 'm'), `the file on /data after loadvm:\n${disk}`);
    const log = await vm.shell("dmesg | grep -iE 'I/O error|virtio.*(reset|error)|EXT2-fs error|hung task' | head -5; echo log-checked");
    assert.doesNotMatch(log.replace(/^.*dmesg.*$/m, ''), /I\/O error|reset|error|hung task/i, `the kernel complained after loadvm:\n${log}`);
    // (the guest's own output since the load, less the echoed dmesg command line, which names the patterns)
    const since = vm.out.slice(after).split('\n').filter((l) => !l.includes('grep -iE'));
    assert.doesNotMatch(since.join('\n'), /I\/O error|EXT2-fs error/);

    const before = vm.out.length;
    vm.child.stdin.write('poweroff\n');
    assert.equal(await vm.exit(300_000), 0, `the guest did not power off cleanly:\n${vm.out.slice(before)}`);
  } finally {
    vm.kill();
    http.close();
  }
  const check = spawnSync('qemu-img', ['check', '-q', join(dir, 'box.tsvm', 'disks', 'vda.qcow2')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  rmSync(dir, { recursive: true, force: true });
});

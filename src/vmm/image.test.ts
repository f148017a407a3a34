// The default guest's scripts are shell the guest's busybox runs at boot; a
// syntax error there would cost a whole boot to find. The host's POSIX sh
// parses them (sh -n reads, never runs; nothing of the guest runs here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DATA_MOUNT, rcScript, stripModuleSignature, UDHCPC_SCRIPT } from './image.js';

function parses(script: string): void {
  const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  assert.equal(r.status, 0, `sh -n: ${r.stderr}`);
}

test('/etc/rc and the udhcpc script parse as POSIX shell', () => {
  const rc = rcScript(['virtio_blk', 'ext4']);
  parses(rc);
  parses(UDHCPC_SCRIPT);
  // the NIC's DHCP only when there is a NIC; the data disk only when there is one, formatted only when blank
  assert.match(rc, /if \[ -e \/sys\/class\/net\/eth0 \]; then udhcpc -i eth0 /);
  assert.match(rc, /if \[ -b \/dev\/vda \]; then/);
  assert.match(rc, new RegExp(`mount -o \\$dataopt /dev/vda ${DATA_MOUNT}`));
  assert.match(rc, /tr -d '\\000'/);
});

test('module signatures are cut off at their appended length; anything else is left whole', () => {
  const body = Buffer.from('\x7fELF module body');
  const sig = Buffer.alloc(40, 0xab);
  const info = Buffer.alloc(12);
  info.writeUInt32BE(sig.length, 8);
  const magic = Buffer.from('~Module signature appended~\n');
  assert.deepEqual(stripModuleSignature(Buffer.concat([body, sig, info, magic])), body);
  assert.deepEqual(stripModuleSignature(body), body);
  // a length that points before the start of the file is not a signature
  const bad = Buffer.alloc(12);
  bad.writeUInt32BE(1 << 20, 8);
  const odd = Buffer.concat([body, bad, magic]);
  assert.deepEqual(stripModuleSignature(odd), odd);
});

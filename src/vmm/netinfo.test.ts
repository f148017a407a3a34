// `info network` at the monitor: each NIC with its backend, the frames
// waiting for it and where frames for it were dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../board/machine.js';
import { nodeNetHost } from '../host/node/net.js';
import { UserNet } from '../net/slirp.js';
import { SocketNet } from '../net/socket.js';
import { runMonitorCommand } from './monitor.js';
import { VmRunner } from './runner.js';

test('info network names each NIC, its backend, the frames waiting and the frames dropped', () => {
  const bios = new Uint8Array(0x10000).fill(0xf4); // hlt everywhere, the reset vector included
  const sock = new SocketNet(nodeNetHost, { connect: { path: '/nonexistent/lab.sock' } });
  const user = new UserNet(nodeNetHost, {});
  const m = new Machine({
    memoryBytes: 1 << 20,
    bios,
    nics: [
      { model: 'e1000', backend: sock, mac: Uint8Array.from([0x52, 0x54, 0, 0, 3, 0x0a]) },
      { model: 'virtio-net-pci', backend: user },
    ],
  });
  const info = m.networkInfo();
  assert.equal(info.length, 2);
  assert.deepEqual(
    info.map((n) => [n.model, n.mac, n.backend.kind, n.backend.queued, n.backend.dropped, n.nicDropped]),
    [
      ['e1000', '52:54:00:00:03:0a', 'socket connect=unix:/nonexistent/lab.sock', 0, 0, 0],
      ['virtio-net-pci', '52:54:00:12:34:57', 'user', 0, 0, 0],
    ],
  );
  sock.stats.dropped = 3;
  const out = runMonitorCommand(new VmRunner(m), 'info network').output;
  assert.match(out, /^net0: index=0,type=nic,model=e1000,macaddr=52:54:00:00:03:0a$/m);
  assert.match(out, /^ \\ socket connect=unix:\/nonexistent\/lab\.sock \(not connected, paused 0 times\)$/m);
  assert.match(out, /frames waiting for the NIC 0; dropped: 3 in the backend's queue, 0 at the NIC/);
  assert.match(out, /^net1: index=1,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:57$/m);
  assert.match(runMonitorCommand(new VmRunner(m), 'help').output, /info network/);
  sock.close();
  user.close();
});

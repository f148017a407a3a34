import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { TSVM } from '../helpers/child.js';
import assert from 'node:assert/strict';
import { parseOptions, UsageError } from '../../src/cli/options.js';
import { RUN_OPTIONS } from '../../src/cli/run.js';
import { nicsFromOptions } from '../../src/cli/netopts.js';
import { validateNics } from '../../src/vmm/netspec.js';
import { VmConfigError } from '../../src/vmm/spec.js';
import { buildMpTables } from '../../src/board/mptable.js';

const nics = (...args: string[]) => nicsFromOptions(parseOptions(args, RUN_OPTIONS, 'run'));

test('-nic, -netdev/-device and -object filter-dump become the spec nics list', () => {
  assert.deepEqual(nics('-nic', 'user,model=e1000,hostfwd=tcp::8080-:80,hostfwd=tcp:127.0.0.1:2222-:22,restrict=on'), [
    { model: 'e1000', mac: null, net: 'user', hostfwd: ['tcp::8080-:80', 'tcp:127.0.0.1:2222-:22'], restrict: true, dump: null },
  ]);
  const [n] = nics('-netdev', 'user,id=n1', '-device', 'e1000,netdev=n1,mac=52:54:00:aa:bb:cc', '-object', 'filter-dump,id=f,netdev=n1,file=/tmp/x.pcap');
  assert.equal(n.mac, '52:54:00:aa:bb:cc');
  assert.equal(n.dump, '/tmp/x.pcap');
  assert.deepEqual(nics('-nic', 'none'), []);
  assert.deepEqual(validateNics(nics('-nic', 'user')), nics('-nic', 'user'));
});

test('bad network options are refused with what to do', () => {
  assert.throws(() => nics('-nic', 'user,model=rtl8139'), (e: Error) => e instanceof UsageError && /tsvm offers: e1000/.test(e.message));
  assert.throws(() => nics('-device', 'e1000,netdev=nope'), /no -netdev with id 'nope'/);
  assert.throws(() => nics('-nic', 'tap'), /use -nic user/);
  assert.throws(() => nics('-object', 'filter-dump,id=d,netdev=x,file=f'), /no netdev 'x'/);
  assert.throws(() => validateNics([{ mac: '01:00:00:00:00:01' }]), (e: Error) => e instanceof VmConfigError && /multicast/.test(e.message));
  assert.throws(() => validateNics([{ hostfwd: ['tcp:80:80'] }]), /tcp:\[HOSTADDR\]:HOSTPORT-\[GUESTADDR\]:GUESTPORT/);
});

test('the MP table carries an I/O interrupt entry for an add-in card INTx on the PCI bus', () => {
  const base = 0x9fc00;
  const plain = buildMpTables(base);
  const t = buildMpTables(base, [{ slot: 3, pin: 1, ioapicPin: 18 }]);
  assert.equal(t.length, plain.length + 8);
  let sum = 0;
  for (let i = 16; i < t.length; i++) sum += t[i];
  assert.equal(sum & 0xff, 0, 'configuration table checksum');
  const found = [];
  for (let i = 16 + 44; i + 8 <= t.length; i++) if (t[i] === 3 && t[i + 4] === 0 && t[i + 5] === 12 && t[i + 7] === 18) found.push(i);
  assert.equal(found.length, 1, 'entry: bus 0 (PCI), source 3<<2|0, I/O APIC pin 18');
});

test('-netdev socket: listen and connect ends become socket NICs; a bad end is refused', () => {
  const [a] = nics('-netdev', 'socket,id=s,listen=127.0.0.1:4444', '-device', 'e1000,netdev=s');
  assert.equal(a.net, 'socket');
  assert.equal(a.listen, '127.0.0.1:4444');
  assert.deepEqual(validateNics([a])[0].listen, '127.0.0.1:4444');
  const [b] = nics('-netdev', 'socket,id=s,connect=127.0.0.1:4444', '-device', 'e1000,netdev=s');
  assert.equal(b.connect, '127.0.0.1:4444');
  assert.throws(() => nics('-netdev', 'socket,id=s', '-device', 'e1000,netdev=s'), /one of listen/);
  assert.throws(() => validateNics([{ net: 'socket', connect: 'nowhere' }]), /HOST:PORT/);
});

test('tsvm run refuses a bad NIC model and a forwarded port in use before the guest starts', async () => {
  const bad = spawnSync(process.execPath, [TSVM, 'run', '-nic', 'user,model=rtl8139'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /-nic model 'rtl8139' is not known; tsvm offers: e1000/);
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
    const c = spawn(process.execPath, [TSVM, 'run', '-nic', `user,hostfwd=tcp:127.0.0.1:${port}-:80`]);
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d));
    c.on('close', (status: number | null) => res({ status, stderr: err }));
  });
  busy.close();
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`host port ${port} is already in use`));
});

test('-nic switch, -netdev switch and QEMU\'s -netdev stream become switch NICs; vm.json names a network; mistakes are refused', () => {
  const sw = (o: Record<string, unknown>) => ({ model: 'e1000', mac: null, net: 'switch', hostfwd: [], restrict: false, dump: null, ...o });
  assert.deepEqual(nics('-nic', 'switch,network=lab'), [sw({ network: 'lab' })]);
  assert.deepEqual(nics('-nic', 'switch,path=/tmp/lab.sock,mac=52:54:00:00:00:09'), [sw({ switch: 'unix:/tmp/lab.sock', mac: '52:54:00:00:00:09' })]);
  assert.deepEqual(nics('-netdev', 'switch,id=n,tcp=127.0.0.1:5555', '-device', 'virtio-net-pci,netdev=n'), [sw({ model: 'virtio-net-pci', switch: 'tcp:127.0.0.1:5555' })]);
  assert.deepEqual(nics('-netdev', 'stream,id=n,server=off,addr.type=unix,addr.path=/tmp/q.sock', '-device', 'e1000,netdev=n'), [sw({ switch: 'unix:/tmp/q.sock' })]);
  assert.deepEqual(nics('-netdev', 'stream,id=n,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=7000', '-device', 'e1000,netdev=n'), [sw({ switch: 'tcp:127.0.0.1:7000' })]);
  // the spec round-trips through vm.json's validator
  for (const n of [...nics('-nic', 'switch,network=lab'), ...nics('-nic', 'switch,tcp=127.0.0.1:5555')]) assert.deepEqual(validateNics([n]), [n]);
  assert.throws(() => nics('-nic', 'switch'), /one of network=NAME, path=SOCKET .* and tcp=127\.0\.0\.1:PORT/);
  assert.throws(() => nics('-nic', 'switch,network=lab,path=/x'), /one of network=NAME/);
  assert.throws(() => nics('-nic', 'switch,network=a/b'), /network 'a\/b' is not a name/);
  assert.throws(() => nics('-nic', 'switch,tcp=5555'), /HOST:PORT/);
  assert.throws(() => nics('-nic', 'switch,network=lab,hostfwd=tcp::1-:2'), /unknown key 'hostfwd'/);
  assert.throws(() => nics('-netdev', 'stream,id=n,server=on,addr.type=unix,addr.path=/x', '-device', 'e1000,netdev=n'), /tsvm does not serve a stream .*tsvm switch --listen/);
  assert.throws(() => nics('-netdev', 'stream,id=n,addr.type=vsock', '-device', 'e1000,netdev=n'), /addr\.type must be unix or inet/);
  assert.throws(() => validateNics([{ net: 'switch' }]), /exactly one of "network": NAME and "switch"/);
  assert.throws(() => validateNics([{ net: 'switch', switch: 'lab' }]), /not a switch address; use unix:PATH or tcp:127\.0\.0\.1:PORT/);
  assert.throws(() => validateNics([{ net: 'user', network: 'lab' }]), /belong to switch networks/);
  assert.throws(() => validateNics([{ net: 'switch', network: 'lab', hostfwd: ['tcp::1-:2'] }]), /belong to user networks/);
});

test('tsvm create -nic switch,network=NAME writes the network into the VM folder\'s vm.json', async () => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-create-net-'));
  const r = spawnSync(process.execPath, [TSVM, 'create', 'web', '--dir', dir, '-nic', 'switch,network=lab,mac=52:54:00:00:00:77'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const vmJson = JSON.parse(readFileSync(join(dir, 'web.tsvm', 'vm.json'), 'utf8'));
  // the default guest's NICs are virtio-net unless model= says (its kernel has the driver)
  assert.deepEqual(vmJson.spec.nics, [{ model: 'virtio-net-pci', mac: '52:54:00:00:00:77', net: 'switch', network: 'lab', hostfwd: [], restrict: false, dump: null }]);
  const bad = spawnSync(process.execPath, [TSVM, 'create', 'web2', '--dir', dir, '-nic', 'switch,network=no/such'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /network 'no\/such' is not a name/);
});

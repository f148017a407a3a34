// Declared device state across the whole PC: every device the machine holds
// (the NICs of each model and every virtio device type included) declares
// its state field by field, declares all of it (the completeness check,
// which catches a property added to a device and not to its schema) and
// round-trips through it; a bad state is refused before anything changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine, type MachineConfig } from './machine.js';
import { checkDeclared, loadDeclared, saveDeclared, undeclaredProperties } from '../state/schema.js';
import type { StateObject } from '../state/state.js';
import { Errno, FsError, type FsBackend, type NetBackend } from '../devices/backends.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioConsole } from '../devices/virtio/console.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { Virtio9p } from '../devices/virtio/9p.js';
import { MemBlock } from '../../test/devices/ata-harness.js';

// a BIOS that spins: the machine is built and powered on, which is all these tests need
const BIOS = new Uint8Array(65536).fill(0xeb); // 0xEB 0xEB...: jmp back on itself at the reset vector
BIOS[0xfff0] = 0xeb;
BIOS[0xfff1] = 0xfe;

/** A cable to nowhere. */
function net(): NetBackend {
  return { attach() {}, send() {}, deliver() {}, close() {} };
}

/** An empty share that refuses everything (the 9p device's state is its fid table, not the files). */
const noFs = new Proxy({ readOnly: true } as FsBackend, {
  get: (t, k) =>
    k in t
      ? (t as unknown as Record<string | symbol, unknown>)[k]
      : () => {
          throw new FsError(Errno.ENOSYS);
        },
});

/** Every kind of device the board wires: the PC's own, a NIC of each model, a virtio device of each type. */
function everything(): Partial<MachineConfig> {
  return {
    nics: [
      { model: 'e1000', backend: net() },
      { model: 'ne2k_pci', backend: net() },
      { model: 'virtio-net-pci', backend: net() },
    ],
    virtio: [
      new VirtioBlk('virtio-blk.0', new MemBlock(1 << 20)),
      new VirtioConsole('virtio-console.0', { write() {} }),
      new VirtioRng('virtio-rng.0', { fill: (d) => d.fill(4) }),
      new Virtio9p('virtio-9p.0', 'share', noFs),
    ],
  };
}

function machine(): Machine {
  return new Machine({ memoryBytes: 1 << 20, bios: BIOS, ...everything() });
}

test('every device of the machine declares its state field by field', () => {
  const m = machine();
  const entries = m.devices();
  assert.ok(entries.length >= 27, `only ${entries.length} devices listed`);
  for (const id of ['e1000.0', 'ne2k.1', 'virtio-net.2', 'virtio-blk.0', 'virtio-console.0', 'virtio-rng.0', 'virtio-9p.0']) assert.ok(entries.some((e) => e.id === id), `no device ${id}`);
  for (const e of entries) {
    assert.ok(e.schema, `device ${e.id} has no state schema`);
    assert.ok(e.schema.name && Number.isInteger(e.schema.version) && e.schema.version >= 1, `device ${e.id}: schema needs a name and a version`);
    assert.equal(e.schema.kind, 'fields', `device ${e.id} does not declare its fields`);
  }
});

test('every device declares all its state (completeness) and round-trips through its schema', () => {
  // SeaBIOS programs the PIC, PIT, RTC, PCI, IDE, VGA and PS/2 controller, assigns every BAR and
  // sets up virtio-blk's queue to look for a boot disk: states with something in them
  const m = new Machine({ memoryBytes: 32 << 20, bios: new Uint8Array(readFileSync('/usr/share/seabios/bios-256k.bin')), ...everything() });
  for (let i = 0; i < 400 && m.runSlice(20_000) === 'running'; i++);
  assert.equal(m.stopReason, 'running');
  for (const e of m.devices()) {
    assert.equal(e.schema.kind, 'fields');
    assert.deepEqual(undeclaredProperties(e.schema, e.device), [], `device ${e.id} has properties that are neither declared state nor transient`);
    const s = saveDeclared(e.schema, e.device);
    checkDeclared(e.id, e.schema, s, e.device);
    loadDeclared(e.schema, e.device, s);
    assert.deepEqual(saveDeclared(e.schema, e.device), s, `device ${e.id} does not round-trip`);
  }
});

test('a property added to any device, or to a struct inside it, and not to its schema is caught', () => {
  const m = machine();
  for (const e of m.devices()) {
    const dev = e.device as Record<string, unknown>;
    dev.addedLater = 1;
    assert.deepEqual(undeclaredProperties(e.schema, e.device), ['addedLater'], `device ${e.id}`);
    delete dev.addedLater;
    // a struct field's object (the IDE channels and drives, the 8259s, the VGA registers, the 8254 counters)
    for (const [name, f] of Object.entries(e.schema.fields)) {
      if ((f.kind !== 'struct' && f.kind !== 'struct[]') || f.get) continue;
      const path = (f.prop ?? name).split('.');
      let inner: unknown = dev;
      for (const k of path) inner = (inner as Record<string, unknown>)[k];
      const target = (f.kind === 'struct[]' ? (inner as object[])[0] : inner) as Record<string, unknown>;
      target.addedLater = 1;
      const where = f.kind === 'struct[]' ? `${f.prop ?? name}[].addedLater` : `${f.prop ?? name}.addedLater`;
      assert.ok(undeclaredProperties(e.schema, e.device).includes(where), `device ${e.id}: ${where} not caught`);
      delete target.addedLater;
    }
  }
});

test('a machine state with a bad device field is refused and changes nothing', () => {
  const m = machine();
  m.runSlice(5000);
  const good = m.saveState();
  const pic = good.devices['pic'] as StateObject;
  const bad = { ...good, devices: { ...good.devices, pic: { ...pic, master: { ...(pic.master as StateObject), priorityAdd: 9 } } } };
  const other = machine();
  const before = other.saveState();
  assert.throws(() => other.loadState(bad), /pic\.master\.priorityAdd must be between 0 and 7, not 9/);
  assert.deepEqual(other.saveState(), before);
  const extra = { ...good, devices: { ...good.devices, port92: { value: 2, turbo: 1 } } };
  assert.throws(() => other.loadState(extra), /port92: unknown field turbo/);
  // the virtio devices' own state, inside their transport's: checked like any other
  const dev = (id: string, device: StateObject) => ({ ...good, devices: { ...good.devices, [id]: { ...(good.devices[id] as StateObject), device } } });
  assert.throws(() => other.loadState(dev('virtio-console.0', { pending: new Uint8Array(65537) })), /virtio-console\.0\.device\.pending must be a Uint8Array of at most length 65536/);
  const table = { msize: 8192, fids: Uint32Array.of(1), flags: Int32Array.of(0), paths: JSON.stringify(['../outside']) };
  assert.throws(() => other.loadState(dev('virtio-9p.0', table)), /virtio-9p\.0\.device: paths must be one relative path per fid/);
  assert.throws(() => other.loadState(dev('virtio-9p.0', { ...table, msize: 1 })), /virtio-9p\.0\.device\.msize must be between 4096 and 524288, not 1/);
  assert.throws(() => other.loadState(dev('e1000.0', {})), /e1000\.0: unknown field device/);
  assert.deepEqual(other.saveState(), before);
  other.loadState(good);
  assert.deepEqual(other.saveState(), good);
});

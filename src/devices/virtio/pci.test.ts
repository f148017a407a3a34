import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzDevice, SeededEntropy, VirtioDriver } from '../../../test/devices/virtio-harness.js';
import { VirtioRng } from './rng.js';
import { Common, VirtioBar, VirtioStatus } from './pci.js';
import type { PciDeviceState } from '../pci/device.js';
import { VirtioF } from './device.js';

const rngDriver = () => new VirtioDriver(new VirtioRng('rng', new SeededEntropy(7)));

function expectedEntropy(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  new SeededEntropy(seed).fill(b);
  return b;
}

/** The capability list in configuration space, as [type, offset] of each vendor capability. */
function caps(d: VirtioDriver): { id: number; at: number }[] {
  const out: { id: number; at: number }[] = [];
  for (let at = d.pci.readConfig(0x34, 1); at; at = d.pci.readConfig(at + 1, 1)) out.push({ id: d.pci.readConfig(at, 1), at });
  return out;
}

test('configuration space: modern virtio ids, MSI-X and the four virtio capabilities into BAR 4', () => {
  const d = rngDriver();
  assert.equal(d.pci.readConfig(0, 2), 0x1af4);
  assert.equal(d.pci.readConfig(2, 2), 0x1044);
  assert.equal(d.pci.readConfig(8, 1), 1);
  assert.ok(d.pci.readConfig(6, 2) & 0x10, 'capability list bit');
  const list = caps(d);
  assert.equal(list[0].id, 0x11);
  const types = list.filter((c) => c.id === 0x09).map((c) => [d.pci.readConfig(c.at + 3, 1), d.pci.readConfig(c.at + 4, 1), d.pci.readConfig(c.at + 8, 4)]);
  assert.deepEqual(types, [
    [1, 4, VirtioBar.COMMON],
    [3, 4, VirtioBar.ISR],
    [2, 4, VirtioBar.NOTIFY],
    [4, 4, VirtioBar.DEVICE],
  ]);
  // BAR sizing: all-ones written, size mask read back
  d.pci.writeConfig(0x20, 0xffffffff, 4);
  assert.equal(d.pci.readConfig(0x20, 4) >>> 0, (~(VirtioBar.CFG_BAR_SIZE - 1) | 8) >>> 0);
  // capabilities are read-only
  d.pci.writeConfig(0x50, 0xffffffff, 4);
  assert.equal(d.pci.readConfig(0x50, 1), 0x09);
});

test('feature negotiation: FEATURES_OK only for a VERSION_1 driver asking for offered features', () => {
  const d = rngDriver();
  const [lo, hi] = d.deviceFeatures();
  assert.ok(hi & 1, 'VERSION_1');
  assert.ok(lo & (1 << VirtioF.RING_EVENT_IDX) && lo & (1 << VirtioF.RING_INDIRECT_DESC));
  d.w(Common.STATUS, 3, 1);
  d.w(Common.GFSELECT, 0, 4);
  d.w(Common.GF, 0, 4); // no VERSION_1: a legacy driver
  d.w(Common.STATUS, 3 | VirtioStatus.FEATURES_OK, 1);
  assert.equal(d.status & VirtioStatus.FEATURES_OK, 0);
  d.init({ features: [1 << 5, 0] }); // a bit rng does not offer
  assert.equal(d.status & VirtioStatus.FEATURES_OK, 0);
  d.init();
  assert.ok(d.status & VirtioStatus.FEATURES_OK && d.status & VirtioStatus.DRIVER_OK);
});

test('virtio-rng fills direct and indirect chains with the source bytes; INTx until ISR is read', () => {
  const d = rngDriver();
  d.init({ eventIdx: false });
  const u = d.request(0, [{ inLen: 16 }, { inLen: 8 }]);
  assert.ok(u);
  assert.equal(u.len, 24);
  assert.deepEqual(u.data, expectedEntropy(7, 24));
  assert.equal(d.intx.level, 1);
  assert.equal(d.r(VirtioBar.ISR, 1), 1);
  assert.equal(d.intx.level, 0);
  assert.equal(d.r(VirtioBar.ISR, 1), 0, 'ISR clears on read');
  const v = d.request(0, [{ inLen: 32 }], true);
  assert.ok(v);
  assert.deepEqual(v.data, expectedEntropy(7, 56).subarray(24));
});

test('MSI-X: per-queue vectors, masked vectors stay pending until unmasked, no INTx', () => {
  const d = rngDriver();
  d.init({ msix: true, eventIdx: false });
  d.request(0, [{ inLen: 4 }]);
  assert.deepEqual(d.msis, [{ addr: 0xfee00000, data: 0x41 }]);
  assert.equal(d.intx.level, 0);
  d.pci.barWrite(VirtioBar.MSIX_BAR, 16 * 1 + 12, 1, 4); // mask vector 1
  d.request(0, [{ inLen: 4 }]);
  assert.equal(d.msis.length, 1);
  assert.equal(d.pci.barRead(VirtioBar.MSIX_BAR, VirtioBar.PBA, 4), 2);
  d.pci.barWrite(VirtioBar.MSIX_BAR, 16 * 1 + 12, 0, 4);
  assert.equal(d.msis.length, 2);
  assert.equal(d.pci.barRead(VirtioBar.MSIX_BAR, VirtioBar.PBA, 4), 0);
});

test('EVENT_IDX: the device publishes avail_event and interrupts only when used idx passes used_event', () => {
  const d = rngDriver();
  d.init();
  const { avail, used } = d.ringBase(0);
  const size = d.pci.queues[0].size;
  const setUsedEvent = (v: number) => {
    d.mem[avail + 4 + 2 * size] = v & 0xff;
    d.mem[avail + 5 + 2 * size] = v >> 8;
  };
  setUsedEvent(5); // "tell me when entry 5 is used"
  for (let i = 0; i < 5; i++) d.request(0, [{ inLen: 1 }]);
  assert.equal(d.intx.raises, 0);
  assert.equal(d.u16(used + 4 + 8 * size), 5, 'avail_event follows the consumed index');
  d.request(0, [{ inLen: 1 }]);
  assert.equal(d.intx.raises, 1);
});

test('guest errors put the device in DEVICE_NEEDS_RESET with a config interrupt; a reset recovers it', () => {
  const cases: [string, (d: VirtioDriver) => void][] = [
    ['a descriptor loop', (d) => {
      const { desc } = d.ringBase(0);
      d.desc(desc, 0, 0x50000, 16, 1 | 2, 1);
      d.desc(desc, 1, 0x50010, 16, 1 | 2, 0);
      d.publish(0, 0);
      d.notify(0);
    }],
    ['a buffer beyond RAM', (d) => {
      d.desc(d.ringBase(0).desc, 0, 0xfff00, 0x1000, 2, 0);
      d.publish(0, 0);
      d.notify(0);
    }],
    ['a huge length', (d) => {
      d.desc(d.ringBase(0).desc, 0, 0x50000, 0xffffffff, 2, 0);
      d.publish(0, 0);
      d.notify(0);
    }],
    ['a nested indirect table', (d) => {
      const t = d.alloc(32);
      d.desc(t, 0, t, 32, 4, 0);
      d.desc(d.ringBase(0).desc, 0, t, 32, 4, 0);
      d.publish(0, 0);
      d.notify(0);
    }],
    ['an avail index beyond the ring', (d) => {
      const { avail } = d.ringBase(0);
      d.mem[avail + 2] = 0xff;
      d.mem[avail + 3] = 0x7f;
      d.notify(0);
    }],
    ['a queue size that is not a power of two', (d) => {
      d.w(Common.STATUS, 0, 1);
      d.w(Common.STATUS, 3, 1);
      d.w(Common.Q_SIZE, 100, 2);
      d.w(Common.Q_ENABLE, 1, 2);
    }],
  ];
  for (const [what, act] of cases) {
    const d = rngDriver();
    d.init({ eventIdx: false });
    act(d);
    assert.ok(d.status & VirtioStatus.DEVICE_NEEDS_RESET, `${what}: DEVICE_NEEDS_RESET`);
    assert.ok(d.pci.errors >= 1 && d.pci.lastError, what);
    d.init({ eventIdx: false });
    assert.equal(d.status & VirtioStatus.DEVICE_NEEDS_RESET, 0, `${what}: reset clears the error`);
    assert.deepEqual(d.request(0, [{ inLen: 4 }])?.len, 4, `${what}: works after reset`);
  }
});

test('a device in DEVICE_NEEDS_RESET tells a running driver through the config vector', () => {
  const d = rngDriver();
  d.init({ msix: true });
  d.desc(d.ringBase(0).desc, 0, 0x50000, 0xffffffff, 2, 0);
  d.publish(0, 0);
  d.notify(0);
  assert.deepEqual(d.msis.at(-1), { addr: 0xfee00000, data: 0x40 });
  assert.equal(d.r(Common.CFG_GENERATION, 1), 1);
});

test('save and load: a fresh device continues the queues where the first left off', () => {
  const a = rngDriver();
  a.init({ msix: true, eventIdx: false });
  a.request(0, [{ inLen: 8 }]);
  // the second machine's entropy source is at the same point (the source is host configuration, not device state)
  const src = new SeededEntropy(7);
  src.fill(new Uint8Array(8));
  const b = new VirtioDriver(new VirtioRng('rng', src));
  b.adopt(a);
  b.pci.loadState(a.pci.saveState());
  assert.deepEqual(b.pci.saveState(), a.pci.saveState());
  const sa = a.request(0, [{ inLen: 8 }], true);
  const sb = b.request(0, [{ inLen: 8 }], true);
  assert.ok(sa && sb);
  assert.deepEqual(sb, sa);
  assert.deepEqual(b.pci.saveState(), a.pci.saveState());
  assert.deepEqual(b.msis, [a.msis.at(-1)]);
  const st = a.pci.saveState() as unknown as { queues: { usedAddr: number }[] };
  assert.throws(() => b.pci.loadState({ ...st, queues: [] } as unknown as PciDeviceState), /queues must be an array of 1/);
  // a ready queue whose rings the state puts outside guest RAM is refused, and nothing changes
  const before = b.pci.saveState();
  const wild = { ...st, queues: [{ ...st.queues[0], usedAddr: 0xfff00000 }] } as unknown as PciDeviceState;
  assert.throws(() => b.pci.loadState(wild), /rng\.queues\[0\]: queue 0: a ring lies outside guest RAM/);
  assert.deepEqual(b.pci.saveState(), before);
});

test('fuzz: virtio-rng survives seeded bad rings, loops, wild addresses and lengths', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const d = rngDriver();
    fuzzDevice(d, seed, 400, (drv, check) => {
      const u = drv.request(0, [{ inLen: 1 + (seed % 64) }], seed % 2 === 0);
      if (check) assert.equal(u?.len, 1 + (seed % 64));
    });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { I440fx, PAM_REGIONS, PAM_REGION_COUNT } from './i440fx.js';

function track(nb: I440fx) {
  const log: string[] = [];
  const smram: boolean[] = [];
  nb.onPamChange = (r, re, we) => log.push(`${r}${re ? 'R' : ''}${we ? 'W' : ''}`);
  nb.onSmramChange = (open) => smram.push(open);
  return { log, smram };
}

test('identity and reset values (82441FX datasheet, QEMU)', () => {
  const nb = new I440fx('nb', { ramSizeBytes: 256 << 20 });
  assert.equal(nb.readConfig(0x00, 4), 0x12378086);
  assert.equal(nb.readConfig(0x0a, 2), 0x0600);
  assert.equal(nb.readConfig(0x0e, 1), 0x00);
  assert.equal(nb.readConfig(0x72, 1), 0x02, 'SMRAM C_BASE_SEG = 010b');
  assert.equal(nb.readConfig(0x57, 1), 32, 'QEMU coreboot RAM byte in 8 MiB units');
  for (let r = 0; r < 7; r++) assert.equal(nb.readConfig(0x59 + r, 1), 0);
});

test('PAM regions: F0000 from PAM0 high nibble, C0000-EFFFF in 16 KiB halves', () => {
  assert.equal(PAM_REGION_COUNT, 13);
  assert.deepEqual(PAM_REGIONS[0], { base: 0xf0000, size: 0x10000 });
  assert.deepEqual(PAM_REGIONS[1], { base: 0xc0000, size: 0x4000 });
  assert.deepEqual(PAM_REGIONS[12], { base: 0xec000, size: 0x4000 });
  const nb = new I440fx('nb');
  const { log } = track(nb);
  nb.writeConfig(0x59, 0x10, 1); // BIOS read from DRAM
  assert.deepEqual(log, ['0R']);
  nb.writeConfig(0x5a, 0x21, 1); // C0000 RE, C4000 WE
  assert.deepEqual(log, ['0R', '1R', '2W']);
  assert.deepEqual(nb.pamState(2), { readEnable: false, writeEnable: true });
  nb.writeConfig(0x5f, 0x30, 1); // EC000 RW
  assert.deepEqual(log.at(-1), '12RW');
  // Writing the same value again reports nothing.
  nb.writeConfig(0x5f, 0x30, 1);
  assert.equal(log.length, 4);
});

test('SMRAM: D_OPEN opens, D_LCK locks it closed until reset', () => {
  const nb = new I440fx('nb');
  const { smram } = track(nb);
  nb.writeConfig(0x72, 0x4a, 1); // SeaBIOS: open the SMM window
  assert.deepEqual(smram, [true]);
  assert.equal(nb.readConfig(0x72, 1), 0x4a);
  nb.writeConfig(0x72, 0x02, 1); // C_BASE_SEG is read-only
  assert.equal(nb.readConfig(0x72, 1), 0x02);
  nb.writeConfig(0x72, 0x58, 1); // lock while trying to open
  assert.equal(nb.readConfig(0x72, 1), 0x1a);
  nb.writeConfig(0x72, 0x42, 1);
  assert.equal(nb.readConfig(0x72, 1), 0x1a, 'locked: D_OPEN, D_LCK and G_SMRAME frozen');
  assert.deepEqual(smram, [true, false]);
  nb.reset();
  assert.equal(nb.readConfig(0x72, 1), 0x02);
  nb.writeConfig(0x72, 0x42, 1);
  assert.equal(nb.readConfig(0x72, 1), 0x42);
});

test('reset reports every PAM region back to ROM', () => {
  const nb = new I440fx('nb');
  nb.writeConfig(0x58, 0x33333000, 4);
  const { log, smram } = track(nb);
  nb.reset();
  assert.equal(log.length, 13);
  assert.ok(log.every((e) => /^\d+$/.test(e)));
  assert.deepEqual(smram, [false]);
});

test('round trip: save, load into a fresh bridge, same mappings and same future', () => {
  const a = new I440fx('nb');
  a.writeConfig(0x58, 0x11113000, 4);
  a.writeConfig(0x5c, 0x33331111, 4);
  a.writeConfig(0x72, 0x1a, 1);
  const s = a.saveState();
  const b = new I440fx('nb');
  const { log } = track(b);
  b.loadState(s);
  assert.equal(log.length, 13, 'board is told every region on load');
  for (let r = 0; r < 13; r++) assert.deepEqual(b.pamState(r), a.pamState(r));
  for (const n of [a, b]) {
    n.writeConfig(0x72, 0x4a, 1);
    n.writeConfig(0x5a, 0x00, 1);
  }
  assert.deepEqual(b.saveState(), a.saveState());
  assert.equal(b.readConfig(0x72, 1), 0x1a, 'lock survived the round trip');
  const bad = { ...s, config: new Uint8Array(256) };
  assert.throws(() => b.loadState(bad), /nb: the state is of PCI device 00000000, not 12378086/);
});

test('fuzz: random config traffic never throws and keeps identity', () => {
  const nb = new I440fx('nb');
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  for (let i = 0; i < 20000; i++) {
    const size = [1, 2, 4][rnd() % 3];
    const addr = (rnd() & 0xff) & ~(size - 1);
    if (rnd() & 1) nb.readConfig(addr, size);
    else nb.writeConfig(addr, rnd() * 257, size);
    if (rnd() % 5000 === 0) nb.reset();
  }
  assert.equal(nb.readConfig(0, 4), 0x12378086);
});

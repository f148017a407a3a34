import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../../bus/ports.js';
import { TestIrqLine } from '../../bus/irq.js';
import { Piix3, Piix3Ide } from './piix3.js';

function make() {
  const io = new IoPorts();
  const irqs = Array.from({ length: 16 }, () => new TestIrqLine());
  const isa = new Piix3('piix3', io, irqs);
  const resets: boolean[] = [];
  isa.onReset = (hard) => resets.push(hard);
  return { io, irqs, isa, resets };
}

test('function 0 identity and datasheet reset values', () => {
  const { isa } = make();
  assert.equal(isa.readConfig(0x00, 4), 0x70008086);
  assert.equal(isa.readConfig(0x0a, 2), 0x0601, 'PCI-to-ISA bridge');
  assert.equal(isa.readConfig(0x0e, 1), 0x80, 'multi-function');
  assert.equal(isa.readConfig(0x04, 2), 0x0007);
  assert.equal(isa.readConfig(0x60, 4), 0x80808080, 'PIRQs not routed');
  assert.equal(isa.readConfig(0x4c, 1), 0x4d);
  assert.equal(isa.readConfig(0x69, 1), 0x02);
});

test('PIRQ routing: SeaBIOS routes A-D to 10,10,11,11 and a PCI interrupt reaches the ISA line', () => {
  const { isa, irqs } = make();
  isa.setPirq(0, 1);
  assert.equal(irqs[10].level, 0, 'not routed yet');
  [10, 10, 11, 11].forEach((irq, i) => isa.writeConfig(0x60 + i, irq, 1));
  assert.equal(irqs[10].level, 1, 'routing an asserted PIRQ drives its IRQ');
  isa.setPirq(1, 1);
  isa.setPirq(0, 0);
  assert.equal(irqs[10].level, 1, 'PIRQB still holds IRQ 10');
  isa.setPirq(1, 0);
  assert.equal(irqs[10].level, 0);
  isa.setPirq(3, 1);
  assert.equal(irqs[11].level, 1);
  // Re-routing moves the level from 11 to 5.
  isa.writeConfig(0x63, 5, 1);
  assert.equal(irqs[11].level, 0);
  assert.equal(irqs[5].level, 1);
  // IRQROUTEN# set: not routed.
  isa.writeConfig(0x63, 0x85, 1);
  assert.equal(irqs[5].level, 0);
});

test('reserved IRQ numbers (0, 1, 2, 8, 13) route nowhere', () => {
  const { isa, irqs } = make();
  for (const irq of [0, 1, 2, 8, 13]) {
    isa.writeConfig(0x60, irq, 1);
    assert.equal(isa.pirqRoute(0), -1);
  }
  isa.setPirq(0, 1);
  assert.ok(irqs.every((l) => l.level === 0));
});

test('reset control register 0CF9h: SRST is kept, RCPU resets (hard when SRST)', () => {
  const { io, resets } = make();
  assert.equal(io.read8[0xcf9](0xcf9), 0);
  // SeaBIOS pci_reboot / Linux reboot=pci: 0x02 then 0x06.
  io.write8[0xcf9](0xcf9, 0x02);
  assert.equal(io.read8[0xcf9](0xcf9), 0x02);
  assert.deepEqual(resets, []);
  io.write8[0xcf9](0xcf9, 0x06);
  assert.deepEqual(resets, [true]);
  io.write8[0xcf9](0xcf9, 0x04);
  assert.deepEqual(resets, [true, false]);
  io.write8[0xcf9](0xcf9, 0x0e);
  assert.deepEqual(resets, [true, false, true]);
  io.write8[0xcf9](0xcf9, 0xf9);
  assert.equal(io.read8[0xcf9](0xcf9), 0, 'only SRST is stored');
});

test('IDE function: 8086:7010, legacy prog-if 80h, BMIBA sizes as 16 bytes of I/O', () => {
  const ide = new Piix3Ide('ide');
  assert.equal(ide.readConfig(0x00, 4), 0x70108086);
  assert.equal(ide.readConfig(0x08, 4) >>> 8, 0x010180);
  assert.equal(ide.readConfig(0x3d, 1), 0, 'no INTx pin: channels use IRQ 14/15');
  assert.equal(ide.readConfig(0x20, 4), 1);
  ide.writeConfig(0x20, 0xffffffff, 4);
  assert.equal(ide.readConfig(0x20, 4), 0xfffffff1);
  // piix_ide_setup enables both channels' decode.
  assert.equal(ide.channelEnabled(0), false);
  ide.writeConfig(0x40, 0x8000, 2);
  ide.writeConfig(0x42, 0x8000, 2);
  assert.ok(ide.channelEnabled(0) && ide.channelEnabled(1));
  const seen: number[] = [];
  ide.onBarChange = (_b, a) => seen.push(a);
  ide.writeConfig(0x20, 0xc0c1, 4);
  ide.writeConfig(0x04, 0x0005, 2);
  assert.deepEqual(seen, [0xc0c0]);
  ide.reset();
  assert.deepEqual(seen, [0xc0c0, -1], 'reset stops decode');
});

test('round trip: PIRQ levels, routing and RC survive; the fresh copy behaves the same', () => {
  const a = make();
  [10, 10, 11, 11].forEach((irq, i) => a.isa.writeConfig(0x60 + i, irq, 1));
  a.isa.setPirq(2, 1);
  a.io.write8[0xcf9](0xcf9, 0x02);
  const s = a.isa.saveState();
  const b = make();
  b.isa.loadState(s);
  assert.deepEqual(b.isa.saveState(), s);
  // The 8259 restores its own inputs; mirror that on the test lines.
  b.irqs[11].set(1);
  for (const m of [a, b]) {
    m.isa.setPirq(2, 0);
    m.isa.setPirq(0, 1);
  }
  assert.equal(b.irqs[11].level, a.irqs[11].level);
  assert.equal(b.irqs[10].level, a.irqs[10].level);
  assert.deepEqual(b.isa.saveState(), a.isa.saveState());
  assert.equal(b.io.read8[0xcf9](0xcf9), 0x02);
  assert.throws(() => b.isa.loadState({ ...s, rc: 'x' } as never));

  const ide = new Piix3Ide('ide');
  ide.writeConfig(0x20, 0xc001, 4);
  ide.writeConfig(0x04, 1, 2);
  const ide2 = new Piix3Ide('ide');
  const seen: number[] = [];
  ide2.onBarChange = (_b, addr) => seen.push(addr);
  ide2.loadState(ide.saveState());
  assert.deepEqual(seen, [0xc000], 'the board is told where BAR 4 decodes');
});

test('fuzz: random config, PIRQ and 0CF9h traffic never throws', () => {
  const { io, isa } = make();
  const ide = new Piix3Ide('ide');
  let seed = 99;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  for (let i = 0; i < 20000; i++) {
    const size = [1, 2, 4][rnd() % 3];
    const addr = (rnd() & 0xff) & ~(size - 1);
    const dev = rnd() & 1 ? isa : ide;
    switch (rnd() % 4) {
      case 0:
        dev.readConfig(addr, size);
        break;
      case 1:
        dev.writeConfig(addr, rnd() * 131, size);
        break;
      case 2:
        isa.setPirq(rnd() % 6 - 1, rnd() & 1);
        break;
      default:
        if (rnd() & 1) io.write8[0xcf9](0xcf9, rnd() & 0xff);
        else io.read8[0xcf9](0xcf9);
    }
  }
  assert.equal(isa.readConfig(0, 4), 0x70008086);
});

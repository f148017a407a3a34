/** Local APIC: SDM behaviour through its registers, the timer in virtual time, the 8259 pass-through. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clock } from '../../time/clock.js';
import { LocalApic, LAPIC_DEFAULT_BASE, type LapicState } from './lapic.js';

const B = LAPIC_DEFAULT_BASE;

/** A stand-in for the 8259 pair: INT level and the vectors it hands out on INTA. */
class FakePic {
  level = false;
  acks = 0;
  vector = 0x20;
  constructor(private readonly _r: () => Rig) {}
  set(level: boolean): void {
    this.level = level;
    this._r().apic.setPicIntr(level);
  }
  acknowledge(): number {
    this.acks++;
    this.set(false);
    return this.vector;
  }
}

interface Rig {
  clock: Clock;
  apic: LocalApic;
  pic: FakePic;
  intr: () => boolean;
  nmis: number;
  eois: number[];
  rd: (off: number) => number;
  wr: (off: number, v: number) => void;
  /** Advance as the board does: through every timer deadline in order. */
  run: (ns: number) => void;
}

function rig(): Rig {
  const clock = new Clock();
  let level = false;
  const r: Rig = {
    clock,
    apic: null as unknown as LocalApic,
    pic: null as unknown as FakePic,
    intr: () => level,
    nmis: 0,
    eois: [],
    rd: (off) => r.apic.mmio.read32!(B + off) >>> 0,
    wr: (off, v) => r.apic.mmio.write32!(B + off, v),
    run: (ns) => {
      for (let d = clock.nextDeadline(); d <= ns; d = clock.nextDeadline()) clock.advanceTo(d);
      clock.advanceTo(ns);
    },
  };
  r.pic = new FakePic(() => r);
  r.apic = new LocalApic('lapic', {
    clock,
    onIntr: (l) => (level = l),
    picAcknowledge: () => r.pic.acknowledge(),
    onNmi: () => r.nmis++,
    onEoiBroadcast: (v) => r.eois.push(v),
  });
  return r;
}

/** What Linux does first: software-enable with spurious vector 0xFF, TPR 0. */
function enable(r: Rig): void {
  r.wr(0xf0, 0x1ff);
}

/** Put `vector` in the IRR as the I/O APIC would (fixed, physical destination 0). */
function raise(r: Rig, vector: number, level = false): void {
  r.apic.deliver(vector, 0, level, false, 0);
}

test('reset values: ID 0, version 0x14 with 6 LVTs, LVTs masked except LINT0 ExtINT, SVR 0xFF, DFR flat', () => {
  const r = rig();
  assert.equal(r.rd(0x20), 0);
  assert.equal(r.rd(0x30), 0x00050014);
  assert.equal(r.rd(0xf0), 0xff);
  assert.equal(r.rd(0xe0), 0xffffffff);
  assert.equal(r.rd(0x320), 0x10000);
  assert.equal(r.rd(0x330), 0x10000);
  assert.equal(r.rd(0x340), 0x10000);
  assert.equal(r.rd(0x350), 0x700);
  assert.equal(r.rd(0x360), 0x10000);
  assert.equal(r.rd(0x370), 0x10000);
  for (let i = 0; i < 8; i++) assert.equal(r.rd(0x100 + i * 16) | r.rd(0x180 + i * 16) | r.rd(0x200 + i * 16), 0);
});

test('register write masks: ID, TPR, LDR, DFR, SVR, LVTs, ICR, divide; read-only registers ignore writes', () => {
  const r = rig();
  r.wr(0x20, 0xffffffff);
  assert.equal(r.rd(0x20), 0xff000000);
  r.wr(0x20, 0);
  r.wr(0x80, 0xffffffff);
  assert.equal(r.rd(0x80), 0xff);
  r.wr(0x80, 0);
  r.wr(0xd0, 0xffffffff);
  assert.equal(r.rd(0xd0), 0xff000000);
  r.wr(0xe0, 0x0fffffff);
  assert.equal(r.rd(0xe0), 0x0fffffff, 'cluster model');
  r.wr(0xf0, 0xffffffff);
  assert.equal(r.rd(0xf0), 0x3ff);
  r.wr(0x320, 0xffffffff);
  assert.equal(r.rd(0x320), 0x300ff, 'timer: vector, mask, periodic');
  r.wr(0x350, 0xffffffff);
  assert.equal(r.rd(0x350), 0x1a7ff, 'LINT0: remote IRR and delivery status are read-only');
  r.wr(0x370, 0xffffffff);
  assert.equal(r.rd(0x370), 0x100ff);
  r.wr(0x340, 0xffffffff);
  assert.equal(r.rd(0x340), 0x107ff);
  r.wr(0x310, 0xffffffff);
  assert.equal(r.rd(0x310), 0xff000000);
  r.wr(0x3e0, 0xffffffff);
  assert.equal(r.rd(0x3e0), 0xb);
  r.wr(0x30, 0);
  r.wr(0xa0, 0xff);
  r.wr(0x390, 1234);
  assert.equal(r.rd(0x30), 0x00050014);
  assert.equal(r.rd(0xa0), 0);
  assert.equal(r.rd(0x390), 0);
  // narrow writes are dropped, narrow reads are slices of the register
  r.apic.mmio.write8(B + 0x80, 0x55);
  assert.equal(r.rd(0x80), 0);
  assert.equal(r.apic.mmio.read8(B + 0x33), 0x00);
  assert.equal(r.apic.mmio.read8(B + 0x30), 0x14);
  assert.equal(r.apic.mmio.read16!(B + 0x32), 0x0005);
});

test('software disable masks every LVT and keeps them masked until enabled again', () => {
  const r = rig();
  enable(r);
  r.wr(0x320, 0x20030);
  assert.equal(r.rd(0x320), 0x20030);
  r.wr(0xf0, 0xff);
  assert.equal(r.rd(0x320), 0x30030);
  assert.equal(r.rd(0x350) & 0x10000, 0x10000);
  r.wr(0x320, 0x20031);
  assert.equal(r.rd(0x320), 0x30031, 'the mask stays set while disabled');
  enable(r);
  assert.equal(r.rd(0x320), 0x30031, 'enabling does not unmask');
  r.wr(0x320, 0x20031);
  assert.equal(r.rd(0x320), 0x20031);
});

test('the highest IRR vector above the PPR class is delivered; ISR holds it until EOI', () => {
  const r = rig();
  enable(r);
  raise(r, 0x31);
  assert.equal(r.intr(), true);
  assert.equal(r.rd(0x200 + 1 * 16), 1 << 0x11, 'IRR bit 0x31');
  assert.equal(r.apic.acknowledge(), 0x31);
  assert.equal(r.rd(0x100 + 1 * 16), 1 << 0x11, 'ISR bit 0x31');
  assert.equal(r.rd(0xa0), 0x30, 'PPR = class of the highest ISR');
  assert.equal(r.intr(), false);
  raise(r, 0x35);
  assert.equal(r.intr(), false, 'same class as the one in service: waits');
  raise(r, 0x41);
  assert.equal(r.intr(), true, 'higher class preempts');
  assert.equal(r.apic.acknowledge(), 0x41);
  assert.equal(r.rd(0xa0), 0x40);
  r.wr(0xb0, 0);
  assert.equal(r.rd(0xa0), 0x30, 'EOI cleared the highest in service (0x41)');
  assert.equal(r.intr(), false);
  r.wr(0xb0, 0);
  assert.equal(r.intr(), true, 'now 0x35 is deliverable');
  assert.equal(r.apic.acknowledge(), 0x35);
  r.wr(0xb0, 0);
  assert.deepEqual(r.eois, [], 'edge vectors are not broadcast');
});

test('TPR blocks classes at or below it; APR and PPR follow SDM 10.8.3', () => {
  const r = rig();
  enable(r);
  r.wr(0x80, 0x45);
  assert.equal(r.rd(0xa0), 0x45, 'PPR = TPR when nothing is in service');
  raise(r, 0x48);
  assert.equal(r.intr(), false);
  assert.equal(r.rd(0x90), 0x45, 'APR = TPR while its class is at or above the IRR and above the ISR');
  raise(r, 0x50);
  assert.equal(r.apic.acknowledge(), 0x50);
  r.wr(0x80, 0x30);
  assert.equal(r.rd(0xa0), 0x50);
  r.wr(0xb0, 0);
  assert.equal(r.intr(), true);
  assert.equal(r.apic.acknowledge(), 0x48);
  assert.equal(r.apic.acknowledge(), 0xff, 'nothing deliverable: the spurious vector, nothing in service');
  r.wr(0xb0, 0);
  assert.equal(r.rd(0x100 + 2 * 16), 0);
});

test('level-triggered vectors set TMR and broadcast their EOI', () => {
  const r = rig();
  enable(r);
  raise(r, 0x62, true);
  assert.equal(r.rd(0x180 + 3 * 16), 1 << 2, 'TMR bit 0x62');
  assert.equal(r.apic.acknowledge(), 0x62);
  r.wr(0xb0, 0);
  assert.deepEqual(r.eois, [0x62]);
  raise(r, 0x62, false);
  assert.equal(r.rd(0x180 + 3 * 16), 0, 'an edge acceptance clears TMR');
});

test('illegal vectors 0-15 are refused and logged in the ESR, which a write latches', () => {
  const r = rig();
  enable(r);
  r.wr(0x370, 0xfe); // error LVT, unmasked
  raise(r, 0x05);
  assert.equal(r.rd(0x280), 0, 'nothing visible before the ESR write');
  r.wr(0x280, 0);
  assert.equal(r.rd(0x280), 0x40, 'receive illegal vector');
  assert.equal(r.apic.acknowledge(), 0xfe, 'the error interrupt');
  r.wr(0xb0, 0);
  r.wr(0x280, 0);
  assert.equal(r.rd(0x280), 0);
  r.rd(0x400 - 0x10 + 0x10); // reserved register
  r.wr(0x280, 0);
  assert.equal(r.rd(0x280), 0x80, 'illegal register address');
  r.wr(0x300, 0x40003); // self IPI with vector 3
  r.wr(0x280, 0);
  assert.equal(r.rd(0x280) & 0x60, 0x60, 'send and receive illegal vector');
});

test('ICR: self IPIs (fixed, NMI), destination matching, INIT and all-but-self go nowhere', () => {
  const r = rig();
  enable(r);
  r.wr(0x300, 0x40050); // shorthand self, fixed 0x50
  assert.equal(r.apic.acknowledge(), 0x50);
  r.wr(0xb0, 0);
  r.wr(0x300, 0xc0051); // all excluding self
  assert.equal(r.intr(), false);
  r.wr(0x300, 0x80052); // all including self
  assert.equal(r.apic.acknowledge(), 0x52);
  r.wr(0xb0, 0);
  r.wr(0x300, 0x40400); // self NMI
  assert.equal(r.nmis, 1);
  r.wr(0x310, 0x01000000);
  r.wr(0x300, 0x00053); // physical destination 1: not us
  assert.equal(r.intr(), false);
  r.wr(0x20, 0x01000000);
  r.wr(0x300, 0x00053);
  assert.equal(r.apic.acknowledge(), 0x53, 'our ID is now 1');
  r.wr(0xb0, 0);
  r.wr(0xd0, 0x04000000); // logical ID bit 2, flat model
  r.wr(0x310, 0x06000000);
  r.wr(0x300, 0x00854); // logical destination 0b110
  assert.equal(r.apic.acknowledge(), 0x54);
  r.wr(0xb0, 0);
  r.wr(0x300, 0x0c4500); // INIT to all but self, as SeaBIOS sends
  r.wr(0x300, 0x0c4608);
  assert.equal(r.intr(), false);
  assert.equal(r.rd(0x300), 0x0c4608, 'delivery status reads idle');
  // cluster model: high nibble is the cluster, low nibble a member mask
  r.wr(0xe0, 0x0fffffff);
  r.wr(0xd0, 0x21000000);
  r.apic.deliver(0x60, 0, false, true, 0x11);
  assert.equal(r.intr(), false, 'other cluster');
  r.apic.deliver(0x60, 0, false, true, 0x23);
  assert.equal(r.apic.acknowledge(), 0x60);
});

test('8259 pass-through: direct while disabled, through LINT0 ExtINT when enabled, blocked when LINT0 is masked', () => {
  const r = rig();
  r.pic.set(true);
  assert.equal(r.intr(), true, 'software-disabled at reset: the PIC drives INTR');
  assert.equal(r.apic.acknowledge(), 0x20);
  assert.equal(r.pic.acks, 1);
  enable(r);
  r.pic.set(true);
  assert.equal(r.intr(), true, 'LINT0 ExtINT (reset value) passes it');
  r.wr(0x80, 0xf0);
  assert.equal(r.intr(), true, 'ExtINT ignores the TPR');
  assert.equal(r.apic.acknowledge(), 0x20);
  assert.equal(r.rd(0x100 + 1 * 16), 0, 'ExtINT vectors are not put in service');
  r.wr(0x80, 0);
  r.wr(0x350, 0x10700);
  r.pic.set(true);
  assert.equal(r.intr(), false, 'masked LINT0 blocks the PIC');
  r.wr(0x350, 0x700);
  assert.equal(r.intr(), true);
  r.apic.setGlobalEnable(false);
  assert.equal(r.intr(), true, 'globally disabled: direct');
  assert.equal(r.rd(0xf0) & 0x100, 0, 'global disable clears SVR enable');
  r.apic.acknowledge();
  r.apic.setGlobalEnable(true);
  raise(r, 0x40);
  assert.equal(r.intr(), false, 'software-disabled: the IRR is held, not delivered');
  enable(r);
  assert.equal(r.apic.acknowledge(), 0x40);
});

test('LINT0 in fixed mode turns the PIC output into a vector; LINT1 NMI delivers NMIs on rising edges', () => {
  const r = rig();
  enable(r);
  r.wr(0x350, 0x8031); // fixed, level, vector 0x31
  r.pic.set(true);
  assert.equal(r.rd(0x200 + 1 * 16), 1 << 0x11);
  r.pic.level = false;
  r.apic.setPicIntr(false);
  assert.equal(r.rd(0x200 + 1 * 16), 0, 'level: IRR follows the line');
  r.wr(0x360, 0x400); // LINT1 NMI
  r.apic.setLint1(true);
  r.apic.setLint1(true);
  r.apic.setLint1(false);
  r.apic.setLint1(true);
  assert.equal(r.nmis, 2);
});

test('timer one-shot: counts down at the divided 1 GHz clock and interrupts once at zero', () => {
  const r = rig();
  enable(r);
  r.wr(0x3e0, 0x3); // divide by 16
  r.wr(0x320, 0x40); // one-shot, vector 0x40
  r.wr(0x380, 1000);
  assert.equal(r.rd(0x380), 1000);
  assert.equal(r.rd(0x390), 1000);
  r.run(16 * 250 + 5);
  assert.equal(r.rd(0x390), 750);
  r.run(16 * 999 + 15);
  assert.equal(r.intr(), false);
  assert.equal(r.rd(0x390), 1);
  r.run(16 * 1000);
  assert.equal(r.rd(0x390), 0);
  assert.equal(r.apic.acknowledge(), 0x40);
  r.wr(0xb0, 0);
  r.run(16 * 5000);
  assert.equal(r.intr(), false, 'one-shot fires once');
  assert.equal(r.clock.nextDeadline(), Infinity);
  r.wr(0x380, 0);
});

test('timer one-shot loaded at a fractional guest time fires once, and periodic at such times moves on', () => {
  // guest time is a float: a load time off the integer ns made the count-out's
  // recomputation land one tick short and re-arm at the deadline it fired for
  const r = rig();
  enable(r);
  r.clock.advanceTo(17178717284.000002);
  r.wr(0x3e0, 0x3); // divide by 16
  r.wr(0x320, 0xec); // one-shot, vector 0xEC
  r.wr(0x380, 246460);
  const due = r.clock.nextDeadline();
  r.run(due + 13);
  assert.equal(r.apic.acknowledge(), 0xec);
  r.wr(0xb0, 0);
  assert.equal(r.clock.nextDeadline(), Infinity, 'a one-shot timer is done once it has fired');
  r.run(due + 1e6);
  assert.equal(r.intr(), false);
  // periodic from a fractional load: one interrupt per period, each deadline after the last
  r.clock.advanceTo(r.clock.nowNs + 0.3);
  r.wr(0x3e0, 0xb); // divide by 1
  r.wr(0x320, 0x200ed); // periodic, vector 0xED
  r.wr(0x380, 7);
  let last = r.clock.nowNs;
  for (let i = 0; i < 50; i++) {
    const d = r.clock.nextDeadline();
    assert.ok(d > last, `deadline ${d} after ${last}`);
    r.run(d);
    assert.equal(r.apic.acknowledge(), 0xed);
    r.wr(0xb0, 0);
    last = d;
  }
});

test('timer periodic: reloads and interrupts every period; divide values; masked still counts; count 0 stops', () => {
  const r = rig();
  enable(r);
  r.wr(0x3e0, 0xb); // divide by 1
  r.wr(0x320, 0x20041); // periodic, vector 0x41
  r.wr(0x380, 100);
  let fired = 0;
  for (let t = 100; t <= 1000; t += 100) {
    r.run(t);
    if (r.intr()) {
      assert.equal(r.apic.acknowledge(), 0x41);
      r.wr(0xb0, 0);
      fired++;
    }
    assert.equal(r.rd(0x390), 100, 'reloaded at each expiry');
  }
  assert.equal(fired, 10);
  r.run(1030);
  assert.equal(r.rd(0x390), 70);
  r.wr(0x320, 0x30041); // masked
  r.run(1500);
  assert.equal(r.intr(), false);
  assert.equal(r.rd(0x390), 100);
  r.wr(0x380, 0);
  assert.equal(r.rd(0x390), 0);
  assert.equal(r.clock.nextDeadline(), Infinity);
  // the divide configuration: bits 3, 1:0 -> 2, 4, 8, 16, 32, 64, 128, 1
  const divisors = [2, 4, 8, 16, 32, 64, 128, 1];
  for (let code = 0; code < 8; code++) {
    const dcr = (code & 3) | ((code & 4) << 1);
    r.wr(0x3e0, dcr);
    r.wr(0x320, 0x10000);
    const t0 = r.clock.nowNs;
    r.wr(0x380, 1000);
    r.run(t0 + divisors[code] * 10);
    assert.equal(r.rd(0x390), 990, `divide code ${code}`);
  }
});

test('save, load into a fresh APIC (timer re-armed), and both continue the same', () => {
  const a = rig();
  enable(a);
  a.wr(0x80, 0x20);
  a.wr(0x320, 0x20045);
  a.wr(0x3e0, 0x1);
  a.wr(0x380, 500);
  raise(a, 0x70, true);
  a.apic.acknowledge();
  raise(a, 0x33);
  a.run(3333);
  const saved = a.apic.saveState();
  const b = rig();
  b.clock.advanceTo(a.clock.nowNs);
  b.apic.loadState(saved);
  assert.equal(b.intr(), a.intr());
  const drive = (r: Rig): number[] => {
    const out: number[] = [r.rd(0x390), r.rd(0xa0)];
    r.wr(0xb0, 0);
    r.run(10000);
    out.push(r.intr() ? r.apic.acknowledge() : -1, r.rd(0x390));
    out.push(...r.eois);
    return out;
  };
  assert.deepEqual(drive(b), drive(a));
  assert.deepEqual(b.apic.saveState(), a.apic.saveState());
});

test('loadState rejects a malformed state without changing the device', () => {
  const r = rig();
  enable(r);
  const before = r.apic.saveState();
  assert.throws(() => r.apic.loadState({ ...before, irr: new Uint32Array(7) }));
  assert.throws(() => r.apic.loadState({ ...before, tpr: 'x' } as unknown as LapicState));
  assert.throws(() => r.apic.loadState({ ...before, timerLoadNs: NaN }));
  assert.deepEqual(r.apic.saveState(), before);
});

test('fuzz: random register traffic, messages, INTA and time never throw', () => {
  let seed = 0xa91c;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const r = rig();
  for (let i = 0; i < 30000; i++) {
    const off = rnd(4) === 0 ? rnd(4096) : rnd(64) << 4;
    const v = (rnd(65536) << 16) | rnd(65536);
    switch (rnd(7)) {
      case 0:
        r.wr(off, v);
        break;
      case 1:
        r.rd(off);
        r.apic.mmio.read8(B + off);
        break;
      case 2:
        r.apic.deliver(rnd(256), rnd(8), rnd(2) === 1, rnd(2) === 1, rnd(256));
        break;
      case 3:
        r.pic.set(rnd(2) === 1);
        break;
      case 4: {
        const vec = r.apic.acknowledge();
        assert.ok(vec >= 0 && vec <= 0xff);
        break;
      }
      case 5:
        r.run(r.clock.nowNs + rnd(5000));
        break;
      default:
        r.apic.setGlobalEnable(rnd(8) !== 0);
        break;
    }
  }
  const s = r.apic.saveState();
  const b = rig();
  b.clock.advanceTo(r.clock.nowNs);
  b.apic.loadState(s);
  assert.deepEqual(b.apic.saveState(), s);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestIrqLine } from '../bus/irq.js';
import { IoPorts } from '../bus/ports.js';
import { Clock } from '../time/clock.js';
import { Uart16550, type UartOptions } from './uart16550.js';

const COM1 = 0x3f8;
const THR = COM1, RBR = COM1, DLL = COM1, IER = COM1 + 1, DLM = COM1 + 1, IIR = COM1 + 2, FCR = COM1 + 2;
const LCR = COM1 + 3, MCR = COM1 + 4, LSR = COM1 + 5, MSR = COM1 + 6, SCR = COM1 + 7;
/** One 8N1 frame (10 bits) at 9600 baud (divisor 12), in ns. */
const FRAME_9600 = Math.round((10 * 12 * 16 * 1e9) / 1843200);

function setup(opts: UartOptions = { maxCharTimeNs: Infinity }) {
  const clock = new Clock();
  const ports = new IoPorts();
  const irq = new TestIrqLine();
  const out: number[] = [];
  const uart = new Uart16550('com1', ports, COM1, irq, clock, { write: (b) => out.push(b) }, opts);
  const outb = (p: number, v: number) => ports.write8[p](p, v);
  const inb = (p: number) => ports.read8[p](p);
  const step = (ns: number) => clock.advanceTo(clock.nowNs + ns);
  return { clock, ports, irq, out, uart, outb, inb, step };
}

test('reset values match the datasheet', () => {
  const { inb } = setup();
  assert.equal(inb(IER), 0);
  assert.equal(inb(IIR), 0x01);
  assert.equal(inb(LCR), 0);
  assert.equal(inb(MCR), 0);
  assert.equal(inb(LSR), 0x60);
  assert.equal(inb(MSR) & 0xf0, 0xb0); // host attached: DCD, DSR, CTS
});

test('divisor latch, scratch and IER are separate registers; IER bits 4-7 read 0', () => {
  const { inb, outb } = setup();
  outb(LCR, 0x83);
  outb(DLL, 0x01);
  outb(DLM, 0x02);
  assert.equal(inb(DLL), 0x01);
  assert.equal(inb(DLM), 0x02);
  outb(LCR, 0x03);
  assert.equal(inb(IER), 0);
  outb(IER, 0xff);
  assert.equal(inb(IER), 0x0f);
  outb(SCR, 0x5a);
  assert.equal(inb(SCR), 0x5a);
  outb(LCR, 0x83);
  assert.equal(inb(DLL), 0x01);
});

test('Linux autoconfig: loopback modem wiring and the 16550A FIFO signature', () => {
  const { inb, outb } = setup();
  outb(MCR, 0x10); // loopback, all outputs off
  inb(MSR);
  assert.equal(inb(MSR) & 0xf0, 0);
  outb(MCR, 0x10 | 0x0a); // RTS | OUT2 -> CTS | DCD
  assert.equal(inb(MSR) & 0xf0, 0x90);
  outb(MCR, 0x10 | 0x05); // DTR | OUT1 -> DSR | RI
  assert.equal(inb(MSR) & 0xf0, 0x60);
  outb(MCR, 0);
  outb(FCR, 0x01);
  assert.equal(inb(IIR) >> 6, 3);
  outb(FCR, 0);
  assert.equal(inb(IIR) >> 6, 0);
});

test('transmit: THRE and TEMT follow the holding and shift registers at the baud rate', () => {
  const { inb, outb, out, step } = setup();
  outb(LCR, 0x03); // 8N1, divisor 12 = 9600 baud
  outb(THR, 0x41);
  assert.equal(inb(LSR) & 0x60, 0x20); // moved to the shift register: THR empty, transmitter busy
  outb(THR, 0x42);
  assert.equal(inb(LSR) & 0x60, 0x00); // holding register full
  step(FRAME_9600 - 1);
  assert.deepEqual(out, []);
  step(1);
  assert.deepEqual(out, [0x41]);
  assert.equal(inb(LSR) & 0x60, 0x20);
  step(FRAME_9600);
  assert.deepEqual(out, [0x41, 0x42]);
  assert.equal(inb(LSR) & 0x60, 0x60);
});

test('transmit timing is capped by maxCharTimeNs', () => {
  const { inb, outb, out, step } = setup({ maxCharTimeNs: 1000 });
  outb(LCR, 0x03);
  outb(THR, 0x31);
  step(1000);
  assert.deepEqual(out, [0x31]);
  assert.equal(inb(LSR) & 0x60, 0x60);
});

test('FIFO mode: 16 bytes are accepted, THRE only when the FIFO is empty', () => {
  const { inb, outb, out, step } = setup();
  outb(LCR, 0x03);
  outb(FCR, 0x07);
  for (let i = 0; i < 20; i++) outb(THR, 0x30 + i); // 1 to the shift register, 16 in the FIFO, 3 lost
  assert.equal(inb(LSR) & 0x60, 0);
  step(FRAME_9600 * 17);
  assert.equal(out.length, 17);
  assert.deepEqual(out.slice(0, 3), [0x30, 0x31, 0x32]);
  assert.equal(inb(LSR) & 0x60, 0x60);
});

test('THRE interrupt: raised on enable, cleared by reading IIR or writing THR, gated by OUT2', () => {
  const { inb, outb, irq, step } = setup();
  outb(LCR, 0x03);
  outb(IER, 0x02);
  assert.equal(inb(IIR) & 0x0f, 0x02);
  assert.equal(irq.level, 0, 'OUT2 clear: no interrupt on the ISA line');
  outb(IER, 0);
  outb(MCR, 0x08);
  outb(IER, 0x02);
  assert.equal(irq.level, 1);
  assert.equal(inb(IIR) & 0x0f, 0x02);
  assert.equal(irq.level, 0, 'reading IIR clears THRE');
  assert.equal(inb(IIR) & 0x0f, 0x01);
  // Linux's UART_BUG_THRE test: toggling IER re-asserts THRE while the transmitter is idle
  outb(IER, 0);
  outb(IER, 0x02);
  assert.equal(inb(IIR) & 0x0f, 0x02);
  outb(THR, 0x55); // goes straight to the shift register, so THR is empty again
  assert.equal(irq.level, 1);
  outb(THR, 0x56);
  assert.equal(irq.level, 0, 'writing THR clears THRE');
  step(FRAME_9600);
  assert.equal(irq.level, 1, 'THR empties into the shift register');
  outb(MCR, 0x18); // loopback: the OUT2 pin is inactive
  assert.equal(irq.level, 0);
});

test('receive: data available at the trigger level, character timeout below it', () => {
  const { uart, inb, outb, irq, step } = setup();
  outb(LCR, 0x03);
  outb(MCR, 0x08);
  outb(FCR, 0x41); // FIFO on, trigger 4
  outb(IER, 0x01);
  uart.receive(new Uint8Array([1, 2, 3, 4, 5]));
  step(FRAME_9600 * 3);
  assert.equal(inb(LSR) & 0x01, 1);
  assert.equal(inb(IIR), 0xc1);
  step(FRAME_9600);
  assert.equal(inb(IIR), 0xc4);
  assert.equal(irq.level, 1);
  assert.equal(inb(RBR), 1);
  assert.equal(inb(IIR), 0xc1, 'below the trigger level again');
  assert.equal(irq.level, 0);
  step(FRAME_9600); // byte 5 arrives: 4 in the FIFO
  assert.equal(inb(IIR), 0xc4);
  assert.equal(inb(RBR), 2);
  step(FRAME_9600 * 4 - 1);
  assert.equal(inb(IIR), 0xc1);
  step(1);
  assert.equal(inb(IIR), 0xcc, 'character timeout after four character times');
  assert.equal(irq.level, 1);
  assert.equal(inb(RBR), 3);
  assert.equal(inb(IIR), 0xc1, 'reading RBR clears the timeout');
  assert.equal(inb(RBR), 4);
  assert.equal(inb(RBR), 5);
  assert.equal(inb(LSR) & 0x01, 0);
  step(FRAME_9600 * 10);
  assert.equal(inb(IIR), 0xc1, 'no timeout with an empty FIFO');
});

test('receive: host input waits in a queue while the FIFO is full, nothing is lost', () => {
  const { uart, inb, outb, step } = setup({ maxCharTimeNs: 1000 });
  outb(FCR, 0xc1);
  const text = new Uint8Array(100).map((_, i) => i);
  uart.receive(text);
  step(1_000_000);
  assert.equal(uart.pendingInput, 100 - 16);
  assert.equal(inb(LSR) & 0x02, 0, 'no overrun');
  const got: number[] = [];
  for (let n = 0; n < 1000 && got.length < 100; n++) {
    while (inb(LSR) & 0x01) got.push(inb(RBR));
    step(5000);
  }
  assert.deepEqual(got, Array.from(text));
});

test('non-FIFO mode holds one byte; the next waits for the read', () => {
  const { uart, inb, step } = setup();
  uart.receive(new Uint8Array([7, 8]));
  step(FRAME_9600 * 5);
  assert.equal(inb(LSR) & 0x03, 0x01);
  assert.equal(inb(RBR), 7);
  assert.equal(inb(LSR) & 0x01, 0);
  step(FRAME_9600);
  assert.equal(inb(RBR), 8);
});

test('loopback: transmitted bytes come back, not to the host; overrun sets OE and the line status interrupt', () => {
  const { uart, inb, outb, out, step } = setup();
  outb(LCR, 0x03);
  outb(MCR, 0x1b);
  outb(IER, 0x05);
  uart.receive(new Uint8Array([0x99])); // the serial input is disconnected in loopback
  outb(THR, 0x11);
  step(FRAME_9600);
  assert.equal(inb(IIR) & 0x0f, 0x04);
  outb(THR, 0x22);
  step(FRAME_9600); // RBR not read: overrun
  assert.equal(inb(IIR) & 0x0f, 0x06);
  const lsr = inb(LSR);
  assert.equal(lsr & 0x03, 0x03);
  assert.equal(inb(LSR) & 0x02, 0, 'reading LSR clears OE');
  assert.equal(inb(RBR), 0x22, '16450 mode: the new byte overwrites RBR');
  assert.deepEqual(out, []);
  outb(MCR, 0x03); // loopback off: the queued host byte arrives
  step(FRAME_9600);
  assert.equal(inb(RBR), 0x99);
});

test('loopback FIFO sizing (Linux size_fifo): 16 bytes come back, then overrun', () => {
  const { inb, outb, step } = setup({ maxCharTimeNs: 1000 });
  outb(MCR, 0x10);
  outb(FCR, 0x07);
  outb(LCR, 0x83);
  outb(DLL, 1);
  outb(DLM, 0);
  outb(LCR, 0x03);
  for (let i = 0; i < 256; i++) outb(THR, i);
  step(1_000_000);
  let n = 0;
  let lsr = 0;
  while ((lsr = inb(LSR)) & 0x01 && n < 300) {
    inb(RBR);
    n++;
    if (n === 1) assert.equal(lsr & 0x02, 0x02);
  }
  assert.equal(n, 16);
});

test('modem status: delta bits, TERI on the trailing edge of RI, modem status interrupt', () => {
  const { inb, outb, irq } = setup();
  outb(MCR, 0x18); // loopback, OUT2 -> DCD
  inb(MSR);
  outb(IER, 0x08);
  outb(MCR, 0x1a); // + RTS -> CTS
  assert.equal(inb(IIR) & 0x0f, 0x00);
  assert.equal(irq.level, 0, 'loopback gates the interrupt');
  assert.equal(inb(MSR), 0x90 | 0x01);
  assert.equal(inb(MSR), 0x90);
  assert.equal(inb(IIR) & 0x0f, 0x01);
  outb(MCR, 0x1e); // + OUT1 -> RI (leading edge: no TERI)
  assert.equal(inb(MSR), 0xd0);
  outb(MCR, 0x1a); // RI falls
  assert.equal(inb(MSR), 0x94);
});

test('host modem lines and break', () => {
  const { uart, inb, outb, irq, step } = setup();
  outb(MCR, 0x08);
  outb(IER, 0x0c);
  uart.setModemLines(0x30); // carrier lost
  assert.equal(irq.level, 1);
  assert.equal(inb(MSR), 0x30 | 0x08);
  assert.equal(irq.level, 0);
  uart.receiveBreak();
  step(FRAME_9600);
  assert.equal(inb(IIR) & 0x0f, 0x06);
  assert.equal(inb(LSR) & 0x11, 0x11);
  assert.equal(inb(RBR), 0);
});

test('save and load: a restored UART continues exactly as the original', () => {
  const a = setup();
  const drive = (t: typeof a, seed: number) => {
    t.outb(LCR, 0x03);
    t.outb(MCR, 0x0b);
    t.outb(FCR, 0x81);
    t.outb(IER, 0x0f);
    for (let i = 0; i < 6; i++) t.outb(THR, seed + i);
    t.uart.receive(new Uint8Array([seed, seed + 1, seed + 2]));
    t.step(FRAME_9600 * 2 + 123);
  };
  drive(a, 0x40);
  const s = a.uart.saveState();
  const b = setup();
  b.clock.loadState(a.clock.saveState());
  b.uart.loadState(s);
  assert.deepEqual(b.uart.saveState(), s);
  const trace = (t: typeof a) => {
    const r: number[] = [];
    drive(t, 0x60);
    for (let i = 0; i < 20; i++) {
      t.step(FRAME_9600 / 3);
      r.push(t.inb(LSR), t.inb(IIR), t.irq.level);
      if (i % 4 === 0) r.push(t.inb(RBR));
    }
    return r;
  };
  const ta = trace(a);
  const outA = a.out.length;
  assert.deepEqual(trace(b), ta);
  assert.deepEqual(b.out, a.out.slice(a.out.length - b.out.length));
  assert.ok(outA > b.out.length, 'bytes were sent before the snapshot');
  assert.deepEqual(b.uart.saveState(), a.uart.saveState());
});

test('loadState rejects malformed state without changing the device', () => {
  const { uart } = setup();
  const good = uart.saveState();
  assert.throws(() => uart.loadState({ ...good, rxData: new Uint8Array(3) }));
  assert.throws(() => uart.loadState({ ...good, ier: 'x' as unknown as number }));
  assert.deepEqual(uart.saveState(), good);
  assert.throws(() => uart.loadState({ ...good, rxCount: 1e9 }), /com1\.rxCount must be a u8/);
  assert.throws(() => uart.loadState({ ...good, rxHead: 16 }), /com1\.rxHead must be between 0 and 15, not 16/);
  assert.throws(() => uart.loadState({ ...good, txDeadlineNs: NaN }), /com1\.txDeadlineNs must be a finite number/);
  assert.deepEqual(uart.saveState(), good);
  // a full FIFO's count with the FIFOs off holds one byte, as the 16450 mode does
  uart.loadState({ ...good, fifoEnabled: false, rxCount: 16 });
  assert.equal(uart.saveState().rxCount, 1);
});

test('fuzz: random port traffic, host input and time never throw', () => {
  let x = 0x2545f491;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (const cap of [1000, Infinity]) {
    const t = setup({ maxCharTimeNs: cap });
    for (let i = 0; i < 20000; i++) {
      const r = rnd();
      const port = COM1 + (r & 7);
      switch ((r >>> 3) & 7) {
        case 0:
        case 1:
        case 2:
          t.outb(port, (r >>> 8) & 0xff);
          break;
        case 3:
        case 4:
          t.inb(port);
          break;
        case 5:
          t.step((r >>> 8) & 0xfffff);
          break;
        case 6:
          t.uart.receive(new Uint8Array([(r >>> 8) & 0xff, (r >>> 16) & 0xff]));
          break;
        default:
          if (r & 0x100000) t.uart.receiveBreak();
          else t.uart.setModemLines(r >>> 12);
      }
    }
    const s = t.uart.saveState();
    const u = setup({ maxCharTimeNs: cap });
    u.clock.loadState(t.clock.saveState());
    u.uart.loadState(s);
    assert.deepEqual(u.uart.saveState(), s);
  }
});

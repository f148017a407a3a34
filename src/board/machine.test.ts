// Whole-machine save/restore: a guest saved mid-run and restored into a fresh
// machine finishes exactly as an uninterrupted run does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from './machine.js';
import type { KernelFile } from './linuxboot.js';
import { saveCpuState } from '../cpu/state.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

function demoRom(): Uint8Array {
  const out = join(mkdtempSync(join(tmpdir(), 'tsvm-state-')), 'demo.bin');
  execFileSync('nasm', ['-f', 'bin', join(ROOT, 'tools/demo/hello.asm'), '-o', out]);
  return new Uint8Array(readFileSync(out));
}

function machine(bios: Uint8Array, out: number[]): Machine {
  return new Machine({ memoryBytes: 16 << 20, bios, debugcon: { write: (b) => out.push(b) } });
}

function runToEnd(m: Machine): void {
  for (let i = 0; i < 1000 && m.runSlice(10_000) === 'running'; i++);
}

test('save mid-run, restore into a fresh machine, and finish identically', () => {
  const bios = demoRom();
  const refOut: number[] = [];
  const ref = machine(bios, refOut);
  runToEnd(ref);
  assert.equal(ref.stopReason, 'halt');

  // stop at several points (real mode, protected mode, paging on) and resume elsewhere
  for (const at of [50, 400, 3000]) {
    const aOut: number[] = [];
    const a = machine(bios, aOut);
    a.runSlice(at);
    const saved = a.saveState();
    const copy = structuredClone(saved);
    const bOut: number[] = [...aOut];
    const b = machine(bios, bOut);
    b.loadState(saved);
    runToEnd(b);
    assert.equal(b.stopReason, 'halt');
    assert.deepEqual(saveCpuState(b.cpu), saveCpuState(ref.cpu), `CPU state after restoring at ${at}`);
    assert.ok(Buffer.from(b.mem.mem.subarray(0, b.mem.ramSize)).equals(Buffer.from(ref.mem.mem.subarray(0, ref.mem.ramSize))), 'RAM');
    assert.equal(Buffer.from(bOut).toString(), Buffer.from(refOut).toString());
    // the saved state is a copy: the source machine running on does not change it
    a.runSlice(2000);
    assert.deepEqual(saved, copy);
  }
});

test('a state for a different RAM size is refused before anything changes', () => {
  const bios = demoRom();
  const a = machine(bios, []);
  a.runSlice(100);
  const s = a.saveState();
  const small = new Machine({ memoryBytes: 1 << 20, bios });
  const before = saveCpuState(small.cpu);
  assert.throws(() => small.loadState(s), /holds 16777216 bytes of RAM; this machine has 1048576/);
  assert.deepEqual(saveCpuState(small.cpu), before);
});

// The whole PC mid-boot: SeaBIOS saved while it initialises PCI, the VGA BIOS
// and the disks (timers armed, PAM shadowing on, BARs mapped), restored into a
// fresh machine, must reach the same screen and log as a run never stopped.
const SEABIOS = '/usr/share/seabios/bios-256k.bin';
const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';

function seabiosMachine(log: number[]): Machine {
  return new Machine({
    memoryBytes: 32 << 20,
    bios: new Uint8Array(readFileSync(SEABIOS)),
    vgaBios: new Uint8Array(readFileSync(VGABIOS)),
    debugcon: { write: (b) => log.push(b) },
  });
}

function runUntilNs(m: Machine, ns: number): void {
  // bounded: a machine with nothing left to wake it stops advancing guest time
  for (let i = 0; i < 20_000 && m.clock.nowNs < ns && m.runSlice(100_000) === 'running'; i++);
}

test('SeaBIOS saved mid-boot and restored elsewhere reaches the same screen and log', () => {
  const END = 3e9;
  const refLog: number[] = [];
  const ref = seabiosMachine(refLog);
  runUntilNs(ref, END);
  const refScreen = ref.vga.renderText().chars.join('\n');
  assert.match(refScreen, /No bootable device/);

  for (const at of [0.3e9, 1.2e9]) {
    const aLog: number[] = [];
    const a = seabiosMachine(aLog);
    runUntilNs(a, at);
    const saved = a.saveState();
    const bLog = [...aLog];
    const b = seabiosMachine(bLog);
    b.loadState(saved);
    runUntilNs(b, END);
    assert.equal(Buffer.from(bLog).toString('latin1'), Buffer.from(refLog).toString('latin1'), `debug console after restoring at ${at / 1e9} s`);
    assert.equal(b.vga.renderText().chars.join('\n'), refScreen, `screen after restoring at ${at / 1e9} s`);
  }
});

test('a state from a machine with other devices or of another version is refused, and nothing changes', () => {
  const bios = demoRom();
  const a = machine(bios, []);
  a.runSlice(500);
  const s = a.saveState();
  const b = machine(bios, []);
  b.runSlice(100);
  const before = b.saveState();
  assert.throws(() => b.loadState({ ...s, version: 1 }), /version 1; this tsvm reads version 2/);
  const { pit: _pit, ...noPit } = s.devices;
  void _pit;
  assert.throws(() => b.loadState({ ...s, devices: noPit }), /no device pit/);
  assert.throws(() => b.loadState({ ...s, devices: { ...s.devices, floppy: {} } }), /device floppy, which this machine does not have/);
  // a device state that fails its own checks half-way through the load: everything is put back
  assert.throws(() => b.loadState({ ...s, devices: { ...s.devices, pic: { bogus: 1 } } }));
  assert.deepEqual(b.saveState(), before);
});

/** The smallest image the 32-bit boot protocol loader accepts: a setup header and one page of code. */
function tinyBzImage(): Uint8Array {
  const k = new Uint8Array(0x2000);
  const dv = new DataView(k.buffer);
  k[0x1f1] = 3; // setup_sects: 4 sectors of setup, then the protected-mode code
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x020f, true); // boot protocol 2.15
  k[0x211] = 1; // LOADED_HIGH
  dv.setUint32(0x22c, 0x37ffffff, true); // initrd_addr_max
  dv.setUint32(0x238, 255, true); // cmdline_size
  k[0x800] = 0xf4; // HLT
  return k;
}

test('direct Linux boot does the firmware chores: both IDE channels enabled (ata_piix skips a disabled one), SCI level-triggered', () => {
  const m = new Machine({ memoryBytes: 16 << 20, linux: { kernel: tinyBzImage(), cmdline: '' } });
  assert.equal(m.ideFn.channelEnabled(0), true);
  assert.equal(m.ideFn.channelEnabled(1), true);
  // the SCI (IRQ 9) the FADT declares is level-triggered in the ELCR, as firmware leaves it
  assert.equal(m.io.read8[0x4d1](0x4d1), 0x02);
});

test("direct Linux boot with a VGA font sets text mode 03h and describes it in screen_info (vgacon's screen); without one, screen_info stays zero", () => {
  const font = new Uint8Array(4096).fill(0x18);
  const m = new Machine({ memoryBytes: 16 << 20, linux: { kernel: tinyBzImage(), cmdline: '' }, vgaFont: font });
  assert.equal(m.vga.displayMode(), 'text');
  assert.deepEqual([m.vga.renderText().cols, m.vga.renderText().rows], [80, 25]);
  const zp = m.mem.mem.subarray(0x7000, 0x7000 + 0x12); // ESI: the zero page
  assert.equal(m.cpu.reg32[6], 0x7000);
  // orig_video_mode 3, cols 80, lines 25, isVGA, points 16 (struct screen_info)
  assert.deepEqual([zp[0x06], zp[0x07], zp[0x0e], zp[0x0f], zp[0x10] | (zp[0x11] << 8)], [3, 80, 25, 1, 16]);
  const bare = new Machine({ memoryBytes: 16 << 20, linux: { kernel: tinyBzImage(), cmdline: '' } });
  assert.deepEqual([...bare.mem.mem.subarray(0x7000, 0x7012)], new Array(0x12).fill(0));
  assert.notEqual(bare.vga.displayMode(), 'text');
});

/** A 32-bit x86 ELF with two PT_LOAD segments (the second with a bss), a note and `junk` bytes of sections after them. */
function tinyVmlinux(junk: number): Uint8Array {
  const segs = [
    { off: 0x1000, paddr: 0x200000, filesz: 0x300, memsz: 0x300, fill: 0xf4 },
    { off: 0x2000, paddr: 0x300000, filesz: 0x80, memsz: 0x1000, fill: 0x5a },
  ];
  const elf = new Uint8Array(0x3000 + junk).fill(0xee, 0x3000);
  const dv = new DataView(elf.buffer);
  dv.setUint32(0, 0x7f454c46, false);
  elf[4] = 1; // 32-bit
  elf[5] = 1; // little-endian
  dv.setUint16(18, 3, true); // x86
  dv.setUint32(24, 0x200010, true); // entry
  dv.setUint32(28, 52, true);
  dv.setUint32(32, 0x3000, true); // sections, at the junk
  dv.setUint16(42, 32, true);
  dv.setUint16(44, 3, true);
  segs.forEach((g, i) => {
    const o = 52 + i * 32;
    dv.setUint32(o, 1, true);
    dv.setUint32(o + 4, g.off, true);
    dv.setUint32(o + 12, g.paddr, true);
    dv.setUint32(o + 16, g.filesz, true);
    dv.setUint32(o + 20, g.memsz, true);
    elf.fill(g.fill, g.off, g.off + g.filesz);
  });
  dv.setUint32(52 + 64, 4, true); // PT_NOTE: not loaded
  return elf;
}

test('direct Linux boot reads the kernel files at each power-on and reset, only the parts it loads, into the same RAM as from bytes', () => {
  const big = new Uint8Array(0x80000).fill(0xcc);
  big.set(tinyBzImage());
  const elf = tinyVmlinux(0x40000);
  const initrd = new Uint8Array(0x3000).fill(0x17);
  const reads = new Map<string, number>();
  const file = (b: Uint8Array, name: string): KernelFile => ({
    get size() {
      return b.length;
    },
    read(into, position) {
      reads.set(name, (reads.get(name) ?? 0) + into.length);
      into.set(b.subarray(position, position + into.length));
    },
  });
  const linux = { kernel: file(big, 'bzImage'), vmlinux: file(elf, 'vmlinux'), initrd: file(initrd, 'initrd'), cmdline: 'console=ttyS0' };
  const m = new Machine({ memoryBytes: 16 << 20, linux });
  const ref = new Machine({ memoryBytes: 16 << 20, linux: { kernel: big, vmlinux: elf, initrd, cmdline: 'console=ttyS0' } });
  assert.equal(m.cpu.eip, 0x200010);
  assert.equal(m.cpu.eip, ref.cpu.eip);
  const ram = (x: Machine): Buffer => Buffer.from(x.mem.mem.subarray(0, 16 << 20));
  assert.ok(ram(m).equals(ram(ref)), 'the same RAM');
  assert.deepEqual([m.mem.mem[0x200000], m.mem.mem[0x30007f], m.mem.mem[0x300080]], [0xf4, 0x5a, 0]);
  // the bzImage's setup code, the vmlinux's headers and segments, the whole initrd: not the rest
  const first = new Map(reads);
  assert.ok(first.get('bzImage')! <= 0x20000, `bzImage: ${first.get('bzImage')} of ${big.length} bytes read`);
  assert.ok(first.get('vmlinux')! <= 0x10000 + 0x400, `vmlinux: ${first.get('vmlinux')} of ${elf.length} bytes read`);
  assert.equal(first.get('initrd'), initrd.length);
  // the guest overwrites its kernel, then resets: loaded again from the files
  m.mem.mem.fill(0, 0x200000, 0x201000);
  m.requestReset();
  m.runSlice(10);
  assert.equal(m.resets, 1);
  assert.equal(m.mem.mem[0x200000], 0xf4, 'the kernel is back after the reset');
  assert.deepEqual([...reads.values()], [...first.values()].map((n) => 2 * n), 'every file read again');
  // a file broken since the start: the reset refuses it with the loader's message
  elf[0] = 0;
  m.requestReset();
  assert.throws(() => m.runSlice(10), /not a 32-bit little-endian x86 ELF/);
  // and the RAM check still counts the whole bzImage, read or not
  const huge = new Uint8Array(15 << 20);
  huge.set(tinyBzImage());
  elf[0] = 0x7f;
  assert.throws(() => new Machine({ memoryBytes: 16 << 20, linux: { ...linux, kernel: file(huge, 'huge') } }), /16 MiB of RAM is too little for this kernel/);
});

test('the accel option selects the tier: the same output on each, compiled code only where asked', () => {
  const bios = demoRom();
  const outs: string[] = [];
  const compiled: number[] = [];
  for (const accel of [{ tier: 'interp', threshold: 1 }, { tier: 'blocks', threshold: 1 }, { tier: 'blocks', threshold: 2000 }] as const) {
    const out: number[] = [];
    const m = new Machine({ memoryBytes: 16 << 20, bios, debugcon: { write: (b) => out.push(b) }, accel });
    runToEnd(m);
    assert.equal(m.stopReason, 'halt');
    outs.push(Buffer.from(out).toString('latin1'));
    compiled.push(m.jit?.compiled ?? 0);
  }
  assert.ok(outs[0]!.length > 0);
  assert.equal(outs[1], outs[0]);
  assert.equal(outs[2], outs[0]);
  assert.equal(compiled[0], 0, 'the interpreter tier compiles nothing');
  assert.ok(compiled[1]! > compiled[2]!, `compiling on first sight compiles more (${compiled[1]}) than the default threshold (${compiled[2]})`);
});

test('loading a state keeps compiled code for the RAM pages it leaves unchanged and drops it where it changes them', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'tsvm-state-')), 'ramloop.bin');
  execFileSync('nasm', ['-f', 'bin', join(ROOT, 'tools/demo/ramloop.asm'), '-o', out]);
  const m = new Machine({ memoryBytes: 1 << 20, bios: new Uint8Array(readFileSync(out)), accel: { tier: 'blocks', threshold: 1 } });
  // which EIPs the block cache compiles (a spy on its private compile step)
  const jit = m.jit as unknown as { compileAndRun(i: number, host: number, eip: number): boolean };
  const compile = jit.compileAndRun.bind(jit);
  const compiledAt: number[] = [];
  jit.compileAndRun = (i, host, eip) => {
    compiledAt.push(eip);
    return compile(i, host, eip);
  };
  const counter = () => m.mem.mem[0x600] | (m.mem.mem[0x601] << 8);
  m.runSlice(5000); // the loop copied to 0x8000 and compiled
  assert.ok(compiledAt.includes(0x8000));
  for (let i = 0; i < 10 && m.cpu.eip !== 0x8000; i++) m.runSlice(1);
  assert.equal(m.cpu.eip, 0x8000, 'saved at the top of the loop, where its block starts');
  const s = m.saveState();
  m.runSlice(5000);
  compiledAt.length = 0;
  m.loadState(s);
  const at = counter();
  m.runSlice(3000);
  assert.ok(!compiledAt.includes(0x8000), 'same RAM: the loop was not compiled again');
  assert.ok(counter() - at > 500, 'and it runs');
  // the same state with the loop adding 2: its page changed, so its code must not be reused
  const ram = s.ram.slice();
  assert.equal(ram[0x8004], 1);
  ram[0x8004] = 2;
  m.loadState({ ...s, ram });
  const from = counter();
  m.runSlice(3000);
  assert.ok(compiledAt.includes(0x8000), 'the changed page was compiled again');
  assert.equal((counter() - from) % 2, 0, 'the new code runs, not the old');
  assert.ok(counter() - from > 500);
});

/** A 64 KiB ROM that prints `text` on COM1 (waiting for THRE before each byte), then CLI; HLT. */
function serialRom(text: string): Uint8Array {
  const rom = new Uint8Array(0x10000);
  // mov dx,0x3fb; mov al,3; out dx,al (8 data bits); mov si,0x40; l: cs lodsb; test al,al; jz done; mov dx,0x3fd; mov ah,al;
  // w: in al,dx; test al,0x20; jz w; mov al,ah; mov dl,0xf8; out dx,al; jmp l; done: cli; hlt
  rom.set([0xba, 0xfb, 0x03, 0xb0, 0x03, 0xee, 0xbe, 0x40, 0x00, 0x2e, 0xac, 0x84, 0xc0, 0x74, 0x11, 0xba, 0xfd, 0x03, 0x88, 0xc4, 0xec, 0xa8, 0x20, 0x74, 0xfb, 0x88, 0xe0, 0xb2, 0xf8, 0xee, 0xeb, 0xe9, 0xfa, 0xf4], 0);
  rom.set(Buffer.from(text + '\0', 'latin1'), 0x40);
  rom.set([0xea, 0x00, 0x00, 0x00, 0xf0], 0xfff0); // jmp far f000:0000
  return rom;
}

test('a guest that prints on the serial port and halts with interrupts off: every byte it wrote comes out', () => {
  const text = 'serial, then cli; hlt <d=AZ>';
  const out: number[] = [];
  const m = new Machine({ memoryBytes: 16 << 20, bios: serialRom(text), serial: [{ write: (b) => out.push(b) }] });
  runToEnd(m);
  assert.equal(m.stopReason, 'halt');
  assert.equal(Buffer.from(out).toString('latin1'), text);
});

// The MOV SS interrupt shadow is part of the saved CPU state: a machine saved
// between a MOV SS and the instruction after it, and restored into a fresh
// machine, still holds back the data breakpoint the MOV SS hit until after
// that instruction (SDM vol. 3, 6.8.3), as a run never stopped does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from './machine.js';
import { saveCpuState } from '../cpu/state.js';

/** Real-mode ROM: DR0 watches 0x500, MOV SS reads it, #DB handler logs DR6 and the return IP. */
function rom(): Uint8Array {
  const b = new Uint8Array(65536).fill(0xf4);
  const code = [
    0xfa, //                         0000 cli
    0x31, 0xc0, //                   0001 xor ax, ax
    0x8e, 0xd8, //                   0003 mov ds, ax
    0x8e, 0xd0, //                   0005 mov ss, ax
    0xbc, 0x00, 0x70, //             0007 mov sp, 0x7000
    0xc7, 0x06, 0x04, 0x00, 0x40, 0x00, // 000A mov word [4], 0x0040 (#DB handler)
    0xc7, 0x06, 0x06, 0x00, 0x00, 0xf0, // 0010 mov word [6], 0xF000
    0xc7, 0x06, 0x00, 0x05, 0x00, 0x00, // 0016 mov word [0x500], 0
    0x66, 0xb8, 0x00, 0x05, 0x00, 0x00, // 001C mov eax, 0x500
    0x0f, 0x23, 0xc0, //             0022 mov dr0, eax
    0x66, 0xb8, 0x01, 0x00, 0x07, 0x00, // 0025 mov eax, 0x70001 (L0, read/write, 2 bytes)
    0x0f, 0x23, 0xf8, //             002B mov dr7, eax
    0x8e, 0x16, 0x00, 0x05, //       002E mov ss, [0x500]   (hits DR0)
    0xbb, 0x34, 0x12, //             0032 mov bx, 0x1234    (the shadowed instruction)
    0x90, //                         0035 nop
    0xfa, 0xf4, //                   0036 cli; hlt
  ];
  const handler = [
    0x0f, 0x21, 0xf0, //             0040 mov eax, dr6
    0x66, 0xa3, 0x00, 0x06, //       0043 mov [0x600], eax
    0x89, 0xe5, //                   0047 mov bp, sp
    0x8b, 0x46, 0x00, //             0049 mov ax, [bp]      (return IP)
    0xa3, 0x04, 0x06, //             004C mov [0x604], ax
    0x66, 0x31, 0xc0, //             004F xor eax, eax
    0x0f, 0x23, 0xf8, //             0052 mov dr7, eax
    0xcf, //                         0055 iret
  ];
  b.set(code, 0);
  b.set(handler, 0x40);
  b.set([0xea, 0x00, 0x00, 0x00, 0xf0], 0xfff0); // jmp 0xF000:0000
  return b;
}

const AFTER_MOV_SS = 0x32;

function runToEnd(m: Machine): void {
  for (let i = 0; i < 1000 && m.runSlice(1000) === 'running'; i++);
  assert.equal(m.stopReason, 'halt');
}

const u32 = (m: Machine, a: number): number => m.mem.mem[a]! | (m.mem.mem[a + 1]! << 8) | (m.mem.mem[a + 2]! << 16) | (m.mem.mem[a + 3]! << 24);

test('a state saved inside the MOV SS shadow keeps the held-back #DB', () => {
  const bios = rom();
  const ref = new Machine({ memoryBytes: 1 << 20, bios });
  runToEnd(ref);
  assert.equal(u32(ref, 0x600) & 0xf, 1, 'DR6.B0: the data breakpoint MOV SS hit');
  assert.equal(u32(ref, 0x604) & 0xffff, 0x35, '#DB after the instruction that follows MOV SS');

  const a = new Machine({ memoryBytes: 1 << 20, bios });
  for (let i = 0; i < 100 && a.cpu.eip !== AFTER_MOV_SS; i++) a.runSlice(1);
  assert.equal(a.cpu.eip, AFTER_MOV_SS, 'stopped right after MOV SS');
  const saved = a.saveState();
  assert.notEqual(saved.cpu.ssShadow, 0, 'the shadow is in the saved state');
  const b = new Machine({ memoryBytes: 1 << 20, bios });
  b.loadState(structuredClone(saved));
  runToEnd(b);
  assert.equal(u32(b, 0x600) & 0xf, 1, 'DR6.B0 after restoring mid-shadow');
  assert.equal(u32(b, 0x604) & 0xffff, 0x35, 'return IP after restoring mid-shadow');
  assert.deepEqual(saveCpuState(b.cpu), saveCpuState(ref.cpu));
});

test('a CPU state without the shadow field (saved before it existed) loads as no shadow', () => {
  const bios = rom();
  const a = new Machine({ memoryBytes: 1 << 20, bios });
  a.runSlice(3);
  const s = a.saveState();
  delete (s.cpu as { ssShadow?: number }).ssShadow;
  const b = new Machine({ memoryBytes: 1 << 20, bios });
  b.loadState(s);
  assert.equal(b.cpu.ssShadow, 0);
  const bad = a.saveState();
  (bad.cpu as { ssShadow?: number }).ssShadow = 7;
  assert.throws(() => b.loadState(bad), /ssShadow must be 0 or 256/);
});

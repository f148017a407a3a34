; Data-breakpoint cases where QEMU (7.2, TCG) departs from the SDM and tsvm
; follows the SDM. Not part of the default run; run with
;   node dist/test/cpu/harness.js qemu-diff/sys-dbreak-diff
; Every mismatch it prints is expected; docs/cpu-qemu-differences.md explains.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  dq 0
sys_gdt_extra_end:
h_db:
  pushad
  mov eax, dr6
  mov ebx, [esp+32]
  mov edx, [esp+40]
  DUMP "#DB"
  xor eax, eax
  mov dr6, eax
  popad
  iretd

code_start:
  call sys_init
  mov dword [ss:IDT_BASE+1*8], (SEL_CODE32 << 16) | (h_db - $$)
  mov dword [ss:IDT_BASE+1*8+4], 0x8E00
  ; two breakpoints hit by one write: the SDM sets B2 and B3, QEMU only B2
  mov eax, SCRATCH+0x300
  mov dr2, eax
  mov dr3, eax
  mov eax, 0xF10000A0           ; G2 R/W2=01 LEN2=1, G3 R/W3=11 LEN3=4
  mov dr7, eax
  mov byte [0x300], 1
  DUMP "two hits (SDM: DR6 B2|B3; QEMU: B2)"
  ; an unaligned DRn: the SDM aligns it down to LEN (0x10100-0x10103),
  ; QEMU watches DR0..DR0+3 (0x10102-0x10105)
  mov eax, SCRATCH+0x102
  mov dr0, eax
  mov eax, 0x000D0002           ; G0 R/W0=01 LEN0=4
  mov dr7, eax
  mov byte [0x100], 1
  DUMP "unaligned: write 0x100 (SDM: trap; QEMU: none)"
  mov byte [0x104], 1
  DUMP "unaligned: write 0x104 (SDM: none; QEMU: trap)"
  ; a data breakpoint and a single step on the same instruction: one #DB
  ; with B0 and BS after it (QEMU reports them apart, from odd places)
  pushfd
  or dword [esp], 0x100
  popfd
  mov dword [0x100], 2
  pushfd
  and dword [esp], ~0x100
  popfd
  DUMP "with tf"
  xor eax, eax
  mov dr7, eax
  TEST_END

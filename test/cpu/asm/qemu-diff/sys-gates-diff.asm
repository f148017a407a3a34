; Cases where QEMU (7.2, TCG) departs from the SDM and tsvm follows the SDM.
; Not part of the default run (the harness lists only test/cpu/asm/*.asm);
; run with: node dist/test/cpu/harness.js qemu-diff/sys-gates-diff
; Every mismatch it prints is expected; docs/cpu-qemu-differences.md explains.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp go
sys_gdt_extra:
  GDESC 0xF0000, 0xFFFF,  0x9E, 0x4       ; 0x100 conforming code DPL0
  GATE 0x100, g_conf-$$, 0xEC, 0          ; 0x108 gate -> conforming
  GDESC 0xF0000, 0xFFFF,  0xBA, 0x4       ; 0x110 ring-1 code
  GDESC 0,       0xFFFFF, 0x32, 0xC       ; 0x118 ring-1 data, not present
  GATE 0x111, g_r1-$$, 0xEC, 0            ; 0x120 gate -> ring 1
  GATE SEL_CODE32, g_fin-$$, 0xEC, 0      ; 0x128 back to ring 0
sys_gdt_extra_end:
g_conf:
  DUMP "in conforming code via gate (SDM: CS RPL = CPL 3; QEMU: RPL 0)"
  retf
g_r1:
  retf
g_fin:
  jmp the_end
go:
  call sys_init
  mov dword [ss:TSS_BASE+0x0C], 0x7000
  mov dword [ss:TSS_BASE+0x10], 0x119     ; SS1 not present
  TO_RING3 r3
r3:
  mov ax, SEL_DPL3D
  mov ds, ax
  call 0x108:0
  TRY "inner call, new SS not present (SDM #SS, QEMU #TS)", call 0x120:0
  call 0x128:0
the_end:
  TEST_END

; System-level cases where QEMU (7.2, TCG) departs from the SDM and tsvm
; follows the SDM, from docs/cpu-qemu-differences.md rows that had no ROM
; test: test/cpu/bochs.test.ts compares tsvm with Bochs on them. Against QEMU
; (by hand) every mismatch is expected; QEMU runs away at the first case (the
; 16-bit gate's upper offset word).
;   node dist/test/cpu/harness.js --bochs qemu-diff/sys-misc-diff
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp go
sys_gdt_extra:
  GDESC 0xF0000, 0xFFFF, 0x1A, 0x4        ; 0x100 code32, not present
  GATE 0x100, g_np-$$, 0x8C, 0            ; 0x108 call gate DPL0 -> not-present code
  GDESC 0xF0000, 0xFF, 0x9A, 0x4          ; 0x110 code32 with limit 0xFF
  GATE 0x110, 0x1000, 0xEC, 0             ; 0x118 call gate DPL3 -> offset beyond the limit
  GDESC 0, 0xFFFFF, 0x72, 0xC             ; 0x120 DPL3 stack, not present
  GATE SEL_CODE32, g_fin-$$, 0xEC, 0      ; 0x128 back to ring 0
sys_gdt_extra_end:
g_np:
  DUMP "jumped into a not-present segment (bug)"
g_fin:
  jmp after_r3

BITS 16
%xdefine MODE p16
%xdefine MODESTR "p16"
h16:                                    ; 16-bit interrupt gate target
  DUMP "16-bit gate: offset = low word only (QEMU: uses the upper word too)"
  iret
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"

go:
  call sys_init
  ; a 16-bit interrupt gate whose reserved upper offset word is not zero
  mov dword [ss:IDT_BASE+0x46*8], (SEL_CODE16 << 16) | (h16 - $$)
  mov dword [ss:IDT_BASE+0x46*8+4], 0x00018600
  int 0x46
  DUMP "back from the 16-bit gate"
  ; JMP through a call gate to a not-present code segment: #NP(0x100) (QEMU: #GP)
  TRY "jmp gate, code not present: #NP(sel)", jmp 0x108:0
  ; RETF to CPL 3 with a not-present SS: #SS(0x120) (QEMU: #NP)
  push dword 0x123
  push dword R3_STACK
  push dword SEL_CODE3
  push dword r3
  TRY "retf to cpl 3, ss not present: #SS(sel)", retf
  add esp, 16
  ; an instruction breakpoint is a linear address: CS base 0xF0000 + EIP
  ; (QEMU compares DR0 with EIP)
  mov eax, 0xF0000 + (.bp - $$)
  mov dr0, eax
  mov eax, 0x00000001                   ; L0, execute, 1 byte
  mov dr7, eax
  EXPECT .bpc
.bp:
  nop
  mov dword [ss:V_CONT], 0
.bpc:
  xor eax, eax
  mov dr7, eax
  mov eax, dr6
  DUMP "instruction breakpoint at CS.base + EIP: #DB, DR6.B0"
  xor eax, eax
  mov dr6, eax
  ; DR7.GD: the next MOV DRn raises #DB with DR6.BD, GD cleared (QEMU: ignored)
  mov eax, 0x2000
  mov dr7, eax
  EXPECT .gdc
  mov eax, dr0
  mov dword [ss:V_CONT], 0
.gdc:
  mov eax, dr6
  mov ebx, dr7
  DUMP "dr7.gd: #DB with BD, GD cleared"
  xor eax, eax
  mov dr6, eax
  mov dr7, eax
  ; from ring 3: CALL through a gate whose offset is beyond the target's
  ; limit: #GP(0) (QEMU: jumps there)
  TO_RING3 r3
r3:
  mov ax, SEL_DPL3D
  mov ds, ax
  TRY "call gate, offset beyond the limit: #GP(0)", call 0x118:0
  call 0x128:0
after_r3:
  mov ax, SEL_SCR
  mov ds, ax
  DUMP "end"
  TEST_END

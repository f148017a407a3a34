; Debug facilities (SDM vol. 3, chapter 17): single-stepping with TF (the trap
; after POPF sets/clears TF, the MOV SS / POP SS shadow, no trap after INT n,
; one trap per REP iteration), DR6.BS; instruction breakpoints in DR0-DR3 with
; DR7 G/L and R/W=00 (a fault before the instruction, DR6 B0-B3 including a
; matching disabled breakpoint, RF=1 in the return frame to get past it).
; The breakpoints run in a code segment with base 0: QEMU compares DRn with
; EIP rather than with the linear address (see docs/cpu-qemu-differences.md).
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

SEL_FLATCODE equ 0x100
ROMLIN equ 0xF0000

%macro IDT_GATE 2       ; vector, handler: DPL0 32-bit interrupt gate
  mov dword [ss:IDT_BASE+(%1)*8], (SEL_CODE32 << 16) | ((%2) - $$)
  mov dword [ss:IDT_BASE+(%1)*8+4], 0x8E00
%endmacro

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  GDESC 0, 0xFFFFF, 0x9B, 0xC       ; 0x100 flat code
sys_gdt_extra_end:

h_db:
  pushad
  mov eax, dr6
  mov ebx, [esp+32]             ; return EIP
  mov ecx, [esp+40]             ; EFLAGS
  movzx edx, word [esp+36]      ; CS
  DUMP "#DB"
  xor eax, eax
  mov dr6, eax
  or dword [esp+40], 0x10000    ; RF: do not hit the same breakpoint again
  popad
  iretd
h_int:
  DUMP "int 0x42 handler"
  iretd

code_start:
  call sys_init
  IDT_GATE 1, h_db
  IDT_GATE 0x42, h_int
  mov eax, dr6
  mov ebx, dr7
  DUMP "dr6 dr7 at start"

  ; ---- single-stepping
  pushfd
  or dword [esp], 0x100
  popfd                         ; TF set: first trap after the next instruction
  nop
  mov eax, 1
  mov ax, SEL_FLAT
  mov ss, ax                    ; no trap after MOV SS: one after the next one
  nop
  push dword SEL_FLAT
  pop ss
  nop
  int 0x42                      ; no trap after INT n
  nop
  mov ecx, 3
  mov esi, 0x100
  mov edi, 0x200
  rep movsb                     ; one trap per iteration
  pushfd
  and dword [esp], ~0x100
  popfd                         ; TF cleared: still a trap after this one
  nop
  DUMP "after single-step"

  ; ---- instruction breakpoints
  jmp SEL_FLATCODE:ROMLIN+flat
flat:
  mov eax, ROMLIN+bp1
  mov dr0, eax
  mov dr1, eax                  ; matches too, but is not enabled
  mov eax, ROMLIN+bp2
  mov dr2, eax
  mov eax, 0x00000002 | 0x20    ; G0, L2 (R/W and LEN 00)
  mov dr7, eax
  nop
bp1:
  nop
  nop
bp2:
  inc eax
  DUMP "after breakpoints"
  mov eax, ROMLIN+bp3
  mov dr3, eax
  mov eax, 0x10000080           ; G3 with R/W3=01 (a write breakpoint): no fault on fetch
  mov dr7, eax
bp3:
  nop
  xor eax, eax
  mov dr7, eax
  mov eax, dr6
  DUMP "dr6 at end"
  jmp SEL_CODE32:back32
back32:
  TEST_END

; Self-modifying code across a page boundary: an instruction that starts on
; one page and ends on the next, both halves rewritten by one store that
; straddles the boundary too, then run again.  QEMU (7.2, TCG) can run the
; old first half with the new second half (found by the random control-flow
; test, test/cpu/random-flow.ts, seed 32 of its first version: a JMP +3 /
; NOP NOP slot at 0x402FFF toggled by XOR WORD); real CPUs, Bochs and tsvm
; see the new instruction.  test/cpu/bochs.test.ts compares tsvm with Bochs.
;   node dist/test/cpu/harness.js --bochs qemu-diff/smc-straddle-diff
%include "lib/harness.inc"
TEST_BEGIN

SEL_FLATCODE equ 0x58       ; the execute-only descriptor, rewritten as flat code
SLOT equ 0x5FFF             ; NOP; NOP; ADD EAX, 0x66  or  JMP +3; ADD EAX, 0x66

%macro PUTB 2-*
  %assign %%a %1
  %rotate 1
  %rep %0-1
    mov byte [es:%%a], %1
    %assign %%a %%a+1
    %rotate 1
  %endrep
%endmacro

; the code: SLOT-1: NOP (entry), the slot, XOR WORD [SS:SLOT], 0x03EB^0x9090,
; DEC ECX, JNZ SLOT, RETF
%macro CODE 0
  PUTB SLOT - 1, 0x90
  PUTB SLOT, 0x90, 0x90, 0x83, 0xC0, 0x66
  PUTB SLOT + 5, 0x36, 0x66, 0x81, 0x35, (SLOT & 0xFF), (SLOT >> 8), 0, 0, 0x7B, 0x93
  PUTB SLOT + 15, 0x49, 0x75, 0xED, 0xCB
%endmacro

ENTER_PM32
  push es
  mov ax, SEL_FLAT
  mov es, ax
  mov dword [es:GDT_BASE + SEL_FLATCODE], 0x0000FFFF
  mov dword [es:GDT_BASE + SEL_FLATCODE + 4], 0x00CF9B00
  CODE
  xor eax, eax
  mov ecx, 4
  call SEL_FLATCODE:SLOT - 1
  DUMP "4 passes", M_NOARITH
  DUMPMEM "slot after 4 passes", SLOT, 5
  mov ecx, 7
  call SEL_FLATCODE:SLOT - 1
  DUMP "7 more passes", M_NOARITH
  DUMPMEM "slot after 7 more", SLOT, 5
  ; the same code reached through paging (the page table maps it 1:1)
  pop es
ENTER_PAGING
  push es
  mov ax, SEL_FLAT
  mov es, ax
  CODE
  xor eax, eax
  mov ecx, 5
  call SEL_FLATCODE:SLOT - 1
  DUMP "paging: 5 passes", M_NOARITH
  DUMPMEM "paging: slot after 5 passes", SLOT, 5
  pop es
TEST_END

; Hardware task switching (SDM vol. 3, chapter 7): CALL/JMP to a TSS, CALL to a
; task gate in the GDT, INT n and an exception (with error code) through IDT
; task gates, IRET with NT back through the link, a 16-bit TSS, the state saved
; in the old TSS, busy bits, NT, the link field, CR0.TS, LDTR from the TSS, DR7
; local enables cleared; faults: busy TSS, not-present TSS, TSS limit too
; small, IRET to a TSS that is not busy.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

TSS_B equ 0x3100
TSS_C equ 0x3200
SEL_B equ 0x100
SEL_C equ 0x108

%macro SET_IDT_TASK 2   ; vector, TSS selector
  mov dword [ss:IDT_BASE+(%1)*8], (%2) << 16
  mov dword [ss:IDT_BASE+(%1)*8+4], 0xE500
%endmacro

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  GDESC TSS_B, 0x67, 0x89, 0        ; 0x100 TSS B (32-bit)
  GDESC TSS_C, 0x2B, 0x81, 0        ; 0x108 TSS C (16-bit)
  GATE SEL_B, 0, 0xE5, 0            ; 0x110 task gate -> B
  GDESC TSS_B, 0x67, 0x09, 0        ; 0x118 TSS not present
  GDESC TSS_B, 0x60, 0x89, 0        ; 0x120 TSS limit too small
sys_gdt_extra_end:

tss_b_img: TSS32 task_b-$$, 0x2, 0xB0B0B0B0, 0x7000, SEL_CODE32, SEL_FLAT, SEL_SCR, SEL_SCR, 0, SEL_SCR2, SEL_SYSD, 0
tss_c_img: TSS16 task_c-$$, 0x2, 0xC0C0, 0x6800, SEL_CODE16, SEL_STK16, SEL_SCR, SEL_SCR, 0

; task B: every entry resumes where the previous one left
task_b:
  str cx
  sldt dx
  DUMP "b1: called"
  DUMPMEM "A saved", TSS_BASE, 0x68
  DUMPMEM "B link", TSS_B, 2
  DUMPMEM "busy A", GDT_BASE+SEL_TSS+5, 1
  DUMPMEM "busy B", GDT_BASE+SEL_B+5, 1
  TRY "b: call busy A", call SEL_TSS:0
  iretd
  str cx
  DUMP "b2: jumped to"
  DUMPMEM "busy A", GDT_BASE+SEL_TSS+5, 1
  DUMPMEM "busy B", GDT_BASE+SEL_B+5, 1
  jmp SEL_TSS:0
  DUMP "b3: int task gate"
  DUMPMEM "B link", TSS_B, 2
  iretd
  pop eax
  DUMP "b4: #GP task gate"
  mov dword [ss:TSS_BASE+0x20], a_after_gp
  iretd
  mov eax, dr7
  DUMP "b5: gdt task gate"
  iretd

BITS 16
%xdefine MODE p16
%xdefine MODESTR "p16"
task_c:
  str cx
  DUMP "c: 16-bit task"
  iret
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"

code_start:
  call sys_init
  mov esi, tss_b_img
  mov edi, TSS_B
  mov ecx, 0x68
  call sys_copy
  mov esi, tss_c_img
  mov edi, TSS_C
  mov ecx, 0x2C
  call sys_copy
  mov eax, 0xA0A0A0A0
  mov ebx, 0xA3A3A3A3
  DUMP "a: start"

  call SEL_B:0
  mov eax, cr0
  DUMP "a: back from call"
  clts
  DUMPMEM "B saved", TSS_B, 0x68
  DUMPMEM "busy A", GDT_BASE+SEL_TSS+5, 1
  DUMPMEM "busy B", GDT_BASE+SEL_B+5, 1

  jmp SEL_B:0
  DUMP "a: back from jmp"
  DUMPMEM "busy A", GDT_BASE+SEL_TSS+5, 1
  DUMPMEM "busy B", GDT_BASE+SEL_B+5, 1

  SET_IDT_TASK 0x40, SEL_B
  int 0x40
  DUMP "a: back from int 0x40"

  mov esi, [ss:IDT_BASE+13*8]
  mov edi, [ss:IDT_BASE+13*8+4]
  SET_IDT_TASK 13, SEL_B
  mov ax, 0x800
  mov ds, ax
a_after_gp:
  mov [ss:IDT_BASE+13*8], esi
  mov [ss:IDT_BASE+13*8+4], edi
  mov ax, SEL_SCR
  mov ds, ax
  DUMP "a: after #GP task"

  mov eax, 0x12345678          ; an instruction breakpoint that never hits
  mov dr0, eax
  mov eax, 0x703               ; L0 G0 LE GE
  mov dr7, eax
  call 0x110:0
  mov eax, dr7
  DUMP "a: back from gdt task gate"
  xor eax, eax
  mov dr7, eax

  call SEL_C:0
  DUMP "a: back from 16-bit task"
  DUMPMEM "C saved", TSS_C, 0x2C
  clts

  TRY "jmp TSS not present", jmp 0x118:0
  TRY "jmp TSS limit small", jmp 0x120:0
  TRY "jmp busy TSS", jmp SEL_TSS:0
  mov word [ss:TSS_BASE], SEL_B
  pushfd
  or dword [esp], 0x4000
  popfd
  TRY "iret NT, link not busy", iretd
  pushfd
  and dword [esp], ~0x4000
  popfd
  DUMP "a: end"
  TEST_END

; Stack address size: SP wrap-around in real mode, 16-bit stack segments
; (B=0) used by 32-bit code (only SP changes, ESP[31:16] is kept) for PUSH,
; POP, CALL, RET, PUSHAD/POPAD, PUSHFD, ENTER/LEAVE and INT, and a 32-bit
; stack segment used by 16-bit code.
%include "lib/harness.inc"
TEST_BEGIN

; ---------------------------------------------------------------- real mode
  ; SP wrap: SS=0, SP=0 -> push lands at 0xFFFE
  mov eax, 0xABCD0000
  mov esp, eax
  mov ebx, 0x11223344
  push bx
  mov ecx, esp
  push ebx
  mov edx, esp
  pop esi
  pop di
  mov ebp, esp
  mov esp, STACK_TOP
  DUMP "rm sp wrap"
  DUMPMEM "rm sp wrap mem", 0xFFF8, 8
  ; upper ESP bits kept by 16-bit stack operations
  mov esp, 0x55550100
  push dword 0x12345678
  call rm_f
  pushad
  popad
  pushfd
  popfd
  enter 4, 1
  leave
  mov ecx, esp
  mov esp, STACK_TOP
  DUMP "rm esp upper kept"
  jmp rm_fe
rm_f:
  mov edx, esp
  ret
rm_fe:

; ---------------------------------------------------------------- 32-bit code, 16-bit stack
ENTER_PM32
  mov ax, SEL_STK16
  mov ss, ax
  mov esp, 0x77770100
  mov eax, 0x12345678
  push eax
  push word 0x9ABC
  mov ebx, esp
  pop cx
  pop edx
  mov esi, esp
  call p32_f
  mov ebp, 0x66660080
  enter 8, 2
  mov edi, esp
  leave
  pushad
  popad
  pushfd
  popfd
  mov eax, esp
  mov bx, SEL_FLAT
  mov ss, bx
  mov esp, STACK_TOP
  DUMP "p32 on 16-bit stack"
  DUMPMEM "p32 on 16-bit stack mem", 0xC0, 0x40
  jmp p32_fe
p32_f:
  mov edx, esp
  ret
p32_fe:
  ; SP wrap with a 16-bit stack in 32-bit code
  mov ax, SEL_STK16
  mov ss, ax
  mov esp, 0x44440004                   ; (at SP=2 the dword would straddle the limit: #SS on the SDM, not on QEMU)
  push dword 0xCAFEF00D
  mov ebx, esp
  push dword 0x0BADBEEF
  mov ecx, esp
  pop edx
  pop esi
  mov edi, esp
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP
  DUMP "p32 16-bit sp wrap"
  DUMPMEM "p32 16-bit sp wrap mem", 0xFFF8, 12
  ; INT through a 32-bit gate with a 16-bit stack (ESP upper clear)
  mov ax, SEL_STK16
  mov ss, ax
  mov esp, 0x00008800
  mov eax, 0x11
  TRY "int3 on 16-bit stack", int3
  mov ebx, esp
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP
  DUMP "after int3"
  DUMPMEM "int frame", 0x87F0, 0x10

; ---------------------------------------------------------------- 16-bit code, 32-bit stack
  jmp SEL_CODE16:c16
BITS 16
%xdefine MODE p16
%xdefine MODESTR "p16"
c16:
  mov esp, 0x00018000
  push ax
  push dword 0x87654321
  mov ebx, esp
  call c16_f
  pop ecx
  pop dx
  mov esi, esp
  mov esp, STACK_TOP
  DUMP "16-bit code on 32-bit stack"
  DUMPMEM "16-bit code on 32-bit stack mem", 0x17FF0, 0x10
  jmp c16_fe
c16_f:
  mov edi, esp
  ret
c16_fe:
TEST_END

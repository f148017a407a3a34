; MUL, IMUL (1, 2 and 3 operands), DIV, IDIV in 8/16/32-bit with register and
; memory operands, including #DE on division by zero and quotient overflow.
; Flags: MUL/IMUL define only CF/OF (SF ZF AF PF masked); DIV/IDIV leave all
; arithmetic flags undefined (masked).  The #DE exception record compares the
; pushed EFLAGS in full (the faulting instruction changes nothing).
%include "lib/harness.inc"
TEST_BEGIN

MEMOP equ 0x40
%define MM M_ONLYCF_OF
%define MD M_NOARITH

%macro MUL1 1 ; mul | imul
  %defstr %%s %1
  %strcat %%l8 %%s, "8"
  %strcat %%l16 %%s, "16"
  %strcat %%l32 %%s, "32"
  %strcat %%lm %%s, " mem"
  PAIRS vals8, 0, 0xA5A5A500
    %1 bl
    DUMP %%l8, MM
    mov eax, edx
    mov [MEMOP], ebx
    %1 byte [MEMOP]
    DUMP %%lm, MM
  ENDPAIRS
  PAIRS vals16, 0, 0xA5A50000
    %1 bx
    DUMP %%l16, MM
  ENDPAIRS
  PAIRS vals32, 0
    %1 ebx
    DUMP %%l32, MM
    mov eax, edx
    mov [MEMOP], ebx
    %1 dword [MEMOP]
    DUMP %%lm, MM
    mov eax, edx
    mov [MEMOP], ebx
    %1 word [MEMOP]
    DUMP %%lm, MM
  ENDPAIRS
%endmacro

%macro IMUL23 0
  PAIRS vals16, 0, 0x5A5A0000
    imul ax, bx
    DUMP "imul16 r,r", MM
    mov eax, edx
    mov [MEMOP], ebx
    imul ax, [MEMOP]
    DUMP "imul16 r,m", MM
  ENDPAIRS
  PAIRS vals32, 0
    imul eax, ebx
    DUMP "imul32 r,r", MM
    mov eax, edx
    mov [MEMOP], ebx
    imul eax, [MEMOP]
    DUMP "imul32 r,m", MM
  ENDPAIRS
  SINGLES vals32
    imul ecx, eax, strict byte 0x7F
    DUMP "imul32 r,r,imm8", MM
    imul ecx, eax, strict byte -0x80
    DUMP "imul32 r,r,imm8", MM
    imul ecx, eax, strict byte -1
    DUMP "imul32 r,r,imm8", MM
    imul ecx, eax, 0x7FFFFFFF
    DUMP "imul32 r,r,imm32", MM
    imul ecx, eax, 0x80000000
    DUMP "imul32 r,r,imm32", MM
    imul cx, ax, 0x8000
    DUMP "imul16 r,r,imm16", MM
    imul cx, ax, strict byte 3
    DUMP "imul16 r,r,imm8", MM
    mov [MEMOP], eax
    imul ebx, [MEMOP], 0x10001
    DUMP "imul32 r,m,imm32", MM
    imul bx, [MEMOP+2], strict byte -2
    DUMP "imul16 r,m,imm8", MM
    imul eax, 1
    DUMP "imul32 r,imm", MM
  ENDSINGLES
%endmacro

; DIVS op: 8-bit (AX / r8), 16-bit (DX:AX / r16), 32-bit (EDX:EAX / r32)
%macro DIVS 1
  %defstr %%s %1
  %strcat %%l8 %%s, "8"
  %strcat %%l16 %%s, "16"
  %strcat %%l32 %%s, "32"
  %strcat %%lm %%s, "32 mem"
  %strcat %%lh %%s, "32 edx=a"
  PAIRS vals16, 0, 0, vals8
    EXPECT %%c8
    %1 bl
    mov dword [ss:V_CONT], 0
%%c8:
    DUMP %%l8, MD
  ENDPAIRS
  PAIRS vals16, 0, 0, vals16
    %ifidn %1,idiv
      cwd
    %else
      xor dx, dx
    %endif
    EXPECT %%c16
    %1 bx
    mov dword [ss:V_CONT], 0
%%c16:
    DUMP %%l16, MD
    mov eax, edx            ; a copy was clobbered by cwd: reload a
    mov eax, [cs:vals16 + esi*4]
    mov dx, 0x7FFF
    EXPECT %%c16b
    %1 bx
    mov dword [ss:V_CONT], 0
%%c16b:
    DUMP %%l16, MD
  ENDPAIRS
  PAIRS vals32, 0
    %ifidn %1,idiv
      cdq
    %else
      xor edx, edx
    %endif
    EXPECT %%c32
    %1 ebx
    mov dword [ss:V_CONT], 0
%%c32:
    DUMP %%l32, MD
    mov eax, [cs:vals32 + esi*4]
    mov edx, eax
    EXPECT %%c32b
    %1 ebx
    mov dword [ss:V_CONT], 0
%%c32b:
    DUMP %%lh, MD
    mov eax, [cs:vals32 + esi*4]
    mov edx, 1
    mov [MEMOP], ebx
    EXPECT %%c32m
    %1 dword [MEMOP]
    mov dword [ss:V_CONT], 0
%%c32m:
    DUMP %%lm, MD
  ENDPAIRS
  ; signed edge cases: -2^31 / -1 overflows, -2^15 / -1, -128 / -1
  mov eax, 0x80000000
  mov edx, 0xFFFFFFFF
  mov ebx, 0xFFFFFFFF
  EXPECT %%e1
  %1 ebx
  mov dword [ss:V_CONT], 0
%%e1:
  DUMP "div edge", MD
  mov eax, 0xFFFF8000
  mov edx, 0xFFFFFFFF
  EXPECT %%e2
  %1 bx
  mov dword [ss:V_CONT], 0
%%e2:
  DUMP "div edge", MD
  mov eax, 0xFF80
  EXPECT %%e3
  %1 bl
  mov dword [ss:V_CONT], 0
%%e3:
  DUMP "div edge", MD
  mov eax, 0xFF81
  EXPECT %%e4
  %1 bl
  mov dword [ss:V_CONT], 0
%%e4:
  DUMP "div edge", MD
  mov eax, 7
  xor edx, edx
  mov ebx, 0
  EXPECT %%e5
  %1 ebx
  mov dword [ss:V_CONT], 0
%%e5:
  DUMP "div by zero", MD
%endmacro

%macro BODY 0
  MUL1 mul
  MUL1 imul
  IMUL23
  DIVS div
  DIVS idiv
%endmacro

BODY
ENTER_PM16
DIVS div
ENTER_PM32
BODY
TEST_END

; ADD ADC SUB SBB CMP AND OR XOR TEST INC DEC NEG NOT: all operand sizes,
; reg/reg, reg/mem, mem/reg, accumulator/imm, r/m,imm, r/m,imm8 (sign-extended),
; CF in and out.  Flags: AND/OR/XOR/TEST leave AF undefined (masked).
%include "lib/harness.inc"
TEST_BEGIN

MEMOP equ 0x40          ; scratch offset used for memory operands

; BIN op, mask, both_flags: reg,reg forms over the full operand tables
%macro BIN_RR 3
  %defstr %%s %1
  %strcat %%l8 %%s, "8 r,r"
  %strcat %%l16 %%s, "16 r,r"
  %strcat %%l32 %%s, "32 r,r"
  PAIRS vals8, %3, 0xA5A5A500
    %1 al, bl
    DUMP %%l8, %2
  ENDPAIRS
  PAIRS vals16, %3, 0xA5A50000
    %1 ax, bx
    DUMP %%l16, %2
  ENDPAIRS
  PAIRS vals32, %3
    %1 eax, ebx
    DUMP %%l32, %2
  ENDPAIRS
%endmacro

; memory and immediate forms over fewer values (b = table[j] for 8-bit table)
%macro BIN_FORMS 2
  %defstr %%s %1
  %strcat %%lm8 %%s, "8 m,r"
  %strcat %%lr16 %%s, "16 r,m"
  %strcat %%lm32 %%s, "32 m,r"
  %strcat %%lr32 %%s, "32 r,m"
  %strcat %%li %%s, " imm"
  PAIRS vals8, 0
    mov [MEMOP], al
    %1 byte [MEMOP], bl
    mov al, [MEMOP]
    DUMP %%lm8, %2
  ENDPAIRS
  PAIRS vals16, 0
    mov [MEMOP], bx
    %1 ax, [MEMOP]
    DUMP %%lr16, %2
  ENDPAIRS
  SINGLES vals32
    mov [MEMOP], eax
    mov ebx, 0x80000001
    %1 [MEMOP], ebx
    mov eax, [MEMOP]
    DUMP %%lm32, %2
    mov [MEMOP], edx
    mov eax, edx
    mov ebx, 0x7FFFFFFF
    %1 ebx, [MEMOP]
    DUMP %%lr32, %2
  ENDSINGLES
  ; immediates: accumulator short forms, r/m imm, r/m imm8 sign-extended, memory imm
  SINGLES vals32
    %1 al, 0x80
    DUMP %%li, %2
    mov eax, edx
    %1 cl, 0x7F
    DUMP %%li, %2
    mov eax, edx
    %1 ax, 0x8000
    DUMP %%li, %2
    mov eax, edx
    %1 eax, 0x7FFFFFFF
    DUMP %%li, %2
    mov eax, edx
    %1 eax, strict dword 1
    DUMP %%li, %2
    mov ebx, edx
    %1 bx, strict byte -1
    DUMP %%li, %2
    mov ebx, edx
    %1 ebx, strict byte -0x80
    DUMP %%li, %2
    mov ebx, edx
    %1 ebx, strict byte 0x7F
    DUMP %%li, %2
    mov ebx, edx
    %1 bh, 0xFF
    DUMP %%li, %2
    mov [MEMOP], edx
    %1 dword [MEMOP], strict byte -1
    mov ebx, [MEMOP]
    DUMP %%li, %2
    mov [MEMOP], edx
    %1 word [MEMOP], 0x1234
    mov ebx, [MEMOP]
    DUMP %%li, %2
    mov [MEMOP], edx
    %1 byte [MEMOP+1], 0x81
    mov ebx, [MEMOP]
    DUMP %%li, %2
  ENDSINGLES
%endmacro

; TEST has no sign-extended imm8 form and no r,m form with reversed direction
%macro TEST_FORMS 0
  SINGLES vals32
    test al, 0x80
    DUMP "test imm", M_NOAF
    test ax, 0x8001
    DUMP "test imm", M_NOAF
    test eax, 0x80000000
    DUMP "test imm", M_NOAF
    test bl, 0xFF
    DUMP "test imm", M_NOAF
    mov [MEMOP], eax
    test dword [MEMOP], 0x7FFFFFFF
    DUMP "test imm", M_NOAF
    test byte [MEMOP+3], 0x80
    DUMP "test imm", M_NOAF
    mov ebx, 0xFFFF
    test [MEMOP], bx
    DUMP "test m,r", M_NOAF
  ENDSINGLES
%endmacro

%macro UN 2  ; op, mask
  %defstr %%s %1
  %strcat %%l8 %%s, "8"
  %strcat %%l16 %%s, "16"
  %strcat %%l32 %%s, "32"
  %strcat %%lm %%s, " mem"
  SINGLES vals8, 0xA5A5A500
    %1 al
    DUMP %%l8, %2
    %1 ah
    DUMP %%l8, %2
  ENDSINGLES
  SINGLES vals16, 0xA5A50000
    %1 ax
    DUMP %%l16, %2
    mov ebx, edx
    %1 bx
    DUMP %%l16, %2
  ENDSINGLES
  SINGLES vals32
    %1 eax
    DUMP %%l32, %2
    mov [MEMOP], edx
    %1 dword [MEMOP]
    mov ebx, [MEMOP]
    DUMP %%lm, %2
    mov [MEMOP], edx
    %1 word [MEMOP+1]
    mov ebx, [MEMOP]
    DUMP %%lm, %2
    mov [MEMOP], edx
    %1 byte [MEMOP+3]
    mov ebx, [MEMOP]
    DUMP %%lm, %2
  ENDSINGLES
%endmacro

%macro BODY 0
  BIN_RR add, M_ALL, 0
  BIN_RR adc, M_ALL, 1
  BIN_RR sub, M_ALL, 0
  BIN_RR sbb, M_ALL, 1
  BIN_RR cmp, M_ALL, 0
  BIN_RR and, M_NOAF, 0
  BIN_RR or,  M_NOAF, 0
  BIN_RR xor, M_NOAF, 0
  BIN_RR test, M_NOAF, 0
  BIN_FORMS add, M_ALL
  BIN_FORMS adc, M_ALL
  BIN_FORMS sub, M_ALL
  BIN_FORMS sbb, M_ALL
  BIN_FORMS cmp, M_ALL
  BIN_FORMS and, M_NOAF
  BIN_FORMS or,  M_NOAF
  BIN_FORMS xor, M_NOAF
  TEST_FORMS
  UN inc, M_ALL
  UN dec, M_ALL
  UN neg, M_ALL
  UN not, M_ALL
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

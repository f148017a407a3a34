; Self-modifying code: code copied to RAM, executed, patched and executed
; again (immediate, opcode), an instruction that patches the very next
; instruction, a hot loop that patches its own immediate every iteration,
; REP MOVSB over code, and (with paging) a patch through a second virtual
; alias of the code page.  tsvm caches decoded instructions per page: every
; case must see the new bytes, as QEMU and real CPUs do.
%include "lib/harness.inc"
TEST_BEGIN

CODE_RAM equ 0x7000         ; linear; real-mode segment 0x0700
SEL_FLATCODE equ 0x58       ; the execute-only descriptor, rewritten as flat code

; PUTB linear, byte...: store bytes through ES (flat in PM, 0 in real mode)
%macro PUTB 2-*
  %assign %%a %1
  %rotate 1
  %rep %0-1
    mov byte [es:%%a], %1
    %assign %%a %%a+1
    %rotate 1
  %endrep
%endmacro

%macro CALLRAM 1   ; offset from CODE_RAM
  %ifidn MODE,p32
    call SEL_FLATCODE:CODE_RAM + %1
  %else
    call (CODE_RAM >> 4):%1
  %endif
%endmacro

; ------------------------------------------------------------------ real mode
  SETSEG es, FLAT
  ; mov eax, 0x11111111 ; retf
  PUTB CODE_RAM, 0x66, 0xB8, 0x11, 0x11, 0x11, 0x11, 0xCB
  CALLRAM 0
  DUMP "first"
  mov byte [es:CODE_RAM + 2], 0x22
  CALLRAM 0
  DUMP "imm patched"
  mov byte [es:CODE_RAM + 1], 0xBB          ; mov ebx, imm32
  xor eax, eax
  CALLRAM 0
  DUMP "opcode patched"
  ; mov byte [cs:7], 0x42 ; mov al, 0x11 ; retf
  PUTB CODE_RAM + 0x40, 0x2E, 0xC6, 0x06, 0x47, 0x00, 0x42, 0xB0, 0x11, 0xCB
  xor eax, eax
  CALLRAM 0x40
  DUMP "patch next insn"
  CALLRAM 0x40
  DUMP "patch next insn again"
  ; hot loop patching its own immediate: mov eax, 1 / add ebx, eax /
  ; inc byte [cs:0x102] / loop / retf  ->  ebx = 1+2+...+10
  PUTB CODE_RAM + 0x100, 0x66, 0xB8, 0x01, 0x00, 0x00, 0x00, 0x66, 0x01, 0xC3, 0x2E, 0xFE, 0x06, 0x02, 0x01, 0xE2, 0xF0, 0xCB
  xor ebx, ebx
  mov ecx, 10
  CALLRAM 0x100
  DUMP "hot loop"
  DUMPMEM "hot loop code", CODE_RAM + 0x100, 17
  ; REP MOVSB over code already executed
  PUTB CODE_RAM + 0x200, 0x66, 0xB8, 0xAA, 0xAA, 0xAA, 0xAA, 0xCB
  PUTB CODE_RAM + 0x300, 0x66, 0xB8, 0xBB, 0xBB, 0xBB, 0xBB, 0xCB
  CALLRAM 0x200
  DUMP "before movsb"
  push ds
  SETSEG ds, FLAT
  mov esi, CODE_RAM + 0x300
  mov edi, CODE_RAM + 0x200
  mov ecx, 7
  rep movsb
  pop ds
  CALLRAM 0x200
  DUMP "after movsb"

; ------------------------------------------------------------------ 32-bit
ENTER_PM32
  SETSEG es, FLAT
  mov dword [es:GDT_BASE + SEL_FLATCODE], 0x0000FFFF
  mov dword [es:GDT_BASE + SEL_FLATCODE + 4], 0x00CF9B00
  PUTB CODE_RAM, 0xB8, 0x11, 0x11, 0x11, 0x11, 0xCB
  CALLRAM 0
  DUMP "first"
  mov byte [es:CODE_RAM + 1], 0x33
  CALLRAM 0
  DUMP "imm patched"
  mov byte [es:CODE_RAM], 0xB9              ; mov ecx, imm32
  CALLRAM 0
  DUMP "opcode patched"
  ; mov byte [es:CODE_RAM+0x49], 0x42 ; mov al, 0x11 ; retf
  PUTB CODE_RAM + 0x40, 0x26, 0xC6, 0x05, 0x49, 0x70, 0x00, 0x00, 0x42, 0xB0, 0x11, 0xCB
  xor eax, eax
  CALLRAM 0x40
  DUMP "patch next insn"
  ; hot loop: mov eax, 1 / add ebx, eax / inc byte [es:0x7101] / loop / retf
  PUTB CODE_RAM + 0x100, 0xB8, 0x01, 0x00, 0x00, 0x00, 0x01, 0xC3, 0x26, 0xFE, 0x05, 0x01, 0x71, 0x00, 0x00, 0xE2, 0xF0, 0xCB
  xor ebx, ebx
  mov ecx, 20
  CALLRAM 0x100
  DUMP "hot loop"
  mov ecx, 5
  CALLRAM 0x100
  DUMP "hot loop again"
  ; a 16-bit write that changes two instructions at once
  PUTB CODE_RAM + 0x180, 0x90, 0x90, 0x40, 0x40, 0xCB   ; nop nop inc eax inc eax retf
  xor eax, eax
  CALLRAM 0x180
  DUMP "nops"
  mov word [es:CODE_RAM + 0x181], 0x4848                ; nop dec eax dec eax
  CALLRAM 0x180
  DUMP "word patch"

ENTER_PAGING
  ; alias: virtual 0x500000 -> physical page of CODE_RAM
  mov edi, PT_BASE + 0x1000
  xor eax, eax
  mov ecx, 1024
  rep stosd
  mov dword [es:PT_BASE + 0x1000 + 0x100 * 4], CODE_RAM | 7
  mov dword [es:PD_BASE + 4], (PT_BASE + 0x1000) | 7
  mov eax, cr3
  mov cr3, eax
  PUTB CODE_RAM + 0x400, 0xB8, 0x44, 0x44, 0x44, 0x44, 0xCB
  CALLRAM 0x400
  DUMP "alias before"
  mov byte [es:0x500000 + 0x401], 0x55
  CALLRAM 0x400
  DUMP "alias patched"
  mov dword [es:0x500000 + 0x401], 0x66666666
  CALLRAM 0x400
  DUMP "alias patched dword"
TEST_END

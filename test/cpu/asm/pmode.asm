; Protected-mode segmentation at CPL 0: data/stack segment loads (MOV, POP,
; LDS/LES/LFS/LGS/LSS) with every descriptor kind of the harness GDT and the
; resulting #GP/#NP/#SS error codes; null-selector use; far JMP faults; LDT
; (LLDT + TI=1 selectors); LTR and the TSS busy bit; accessed-bit updates;
; LAR/LSL/VERR/VERW/ARPL over all selectors; SGDT/SIDT/SLDT/STR/SMSW; INT n
; beyond the IDT limit and through a not-present gate.
; Segment *limit* violations on data accesses are not tested: QEMU (TCG) does
; not check data segment limits (docs/cpu-testing.md).
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

LDT_BASE equ 0x4000

%macro LOADTRY 2  ; sreg, selector
  %defstr %%r %1
  %defstr %%v %2
  %strcat %%l "mov ", %%r, ", ", %%v
  mov eax, %2
  EXPECT %%c
  mov %1, ax
  mov dword [ss:V_CONT], 0
%%c:
  DUMP %%l
  SETSEG ds, SCR
  SETSEG es, SCR
  SETSEG fs, SCR
  SETSEG gs, SCR
%endmacro

%macro SSTRY 1
  %defstr %%v %1
  %strcat %%l "mov ss, ", %%v
  mov eax, %1
  EXPECT %%c
  mov ss, ax
  ; back to the flat stack before touching memory through SS (an expand-down
  ; SS does not reach the harness variables at 0x500: #SS on the SDM, not on QEMU)
  mov bx, ss
  mov cx, SEL_FLAT
  mov ss, cx
  mov dword [ss:V_CONT], 0
  jmp %%d
%%c:
  mov bx, ss
  push dword SEL_FLAT
  pop ss
%%d:
  DUMP %%l
%endmacro

  ; an LDT at LDT_BASE: 0x04 null-ish, 0x0C data (base SCRATCH2), 0x14 not present
  SETSEG es, FLAT
  mov edi, LDT_BASE
  xor eax, eax
  mov ecx, 0x40
  rep stosd
  mov dword [es:LDT_BASE + 8], 0x0000FFFF
  mov dword [es:LDT_BASE + 12], 0x00CF9302      ; base 0x20000, 4G, data
  mov dword [es:LDT_BASE + 16], 0x0000FFFF
  mov dword [es:LDT_BASE + 20], 0x00CF1302      ; not present
  mov dword [es:GDT_BASE + 0x88], 0x400000FF
  mov dword [es:GDT_BASE + 0x8C], 0x00008200    ; LDT descriptor: base 0x4000 limit 0xFF
  SETSEG es, SCR

  ; ---- data segment loads
  LOADTRY ds, 0
  LOADTRY ds, 3
  LOADTRY es, SEL_CODE32
  LOADTRY fs, SEL_CODE_RO
  LOADTRY gs, SEL_NP
  LOADTRY ds, SEL_TSS
  LOADTRY ds, SEL_CGATE
  LOADTRY ds, SEL_DPL3D
  LOADTRY ds, SEL_FLAT | 3
  LOADTRY es, SEL_FLAT | 1
  LOADTRY fs, SEL_RO
  LOADTRY gs, SEL_EXPDN
  LOADTRY ds, GDT_ENTRIES * 8
  LOADTRY ds, 0x1000
  LOADTRY ds, 0x0C                 ; LDT selector, no LDT loaded yet
  LOADTRY ds, SEL_SYSD

  ; ---- stack segment loads
  SSTRY 0
  SSTRY 3
  SSTRY SEL_RO
  SSTRY SEL_CODE32
  SSTRY SEL_DPL3D
  SSTRY SEL_FLAT | 3
  SSTRY SEL_NP
  SSTRY SEL_EXPDN
  SSTRY SEL_STK16
  SSTRY SEL_TSS
  SSTRY GDT_ENTRIES * 8

  ; ---- null selector use
  xor eax, eax
  mov fs, ax
  ; reads and writes through a null FS: #GP(0) on the SDM, not on QEMU (qemu-diff/seglimit-diff.asm)
  TRY "fs=0 lea ok", lea eax, [fs:0x10]
  SETSEG fs, SCR

  ; ---- POP sreg, LDS & co
  push dword SEL_NP
  TRY "pop ds np", pop ds
  add esp, 4
  SETSEG ds, SCR
  push dword SEL_SCR2
  TRY "pop es ok", pop es
  SETSEG es, SCR
  mov dword [0x40], 0x12345678
  mov word [0x44], SEL_SCR2
  mov word [0x48], 0x9ABC
  mov word [0x4A], SEL_NP
  mov dword [0x50], 0x8800
  mov word [0x54], SEL_FLAT
  mov dword [0x58], 0x8800
  mov word [0x5C], SEL_RO
  TRY "les ok", les ebx, [0x40]
  SETSEG es, SCR
  TRY "lfs np", lfs cx, [0x48]
  TRY "lgs ok 16", lgs dx, [0x40]
  SETSEG gs, SCR
  TRY "lss ok", lss esp, [0x50]
  mov esp, STACK_TOP
  TRY "lss ro", lss esp, [0x58]
  mov esp, STACK_TOP
  TRY "lds reg", db 0xC5, 0xC0

  ; ---- far JMP faults
  TRY "jmp far data", jmp SEL_FLAT:0x1234
  TRY "jmp far null", jmp 0:0x1234
  TRY "jmp far beyond", jmp 0x400:0x1234
  TRY "jmp far beyond cs limit", jmp SEL_CODE32:0x12345
  ; not tested (QEMU 7.2 deviations, docs/cpu-testing.md): CALL FAR beyond
  ; the limit (QEMU's error code is the selector, the SDM's 0) and JMP FAR
  ; with a 32-bit offset into a 16-bit segment (QEMU truncates it to 16 bits),
  ; RETF beyond the limit (QEMU does not check it)
  TRY "jmp far to execute-only", jmp SEL_CODE_RO:jf_ok
jf_ok:
  jmp SEL_CODE32:jf_back
jf_back:
  DUMP "back in code32"

  ; ---- LDT
  mov ax, SEL_SYSD
  lldt ax
  sldt bx
  DUMP "lldt/sldt"
  LOADTRY ds, 0x0C
  mov eax, 0x0C
  mov ds, ax
  mov ebx, [0x10]
  mov dword [0x10], 0x5A5A5A5A
  SETSEG ds, SCR
  mov ecx, [SCRATCH2 - SCRATCH + 0x10]
  DUMP "ldt data access"
  LOADTRY es, 0x14
  LOADTRY es, 0x0F
  LOADTRY es, 0x104                ; beyond the LDT limit
  xor eax, eax
  lldt ax
  LOADTRY ds, 0x0C
  mov ax, SEL_DPL3D
  TRY "lldt data", lldt ax
  DUMPMEM "ldt descriptors", LDT_BASE + 8, 16

  ; ---- LTR, busy bit, STR
  DUMPMEM "tss desc before", GDT_BASE + SEL_TSS, 8
  mov ax, SEL_TSS
  ltr ax
  str ebx
  DUMP "ltr/str"
  DUMPMEM "tss desc after", GDT_BASE + SEL_TSS, 8
  mov ax, SEL_TSS
  TRY "ltr busy", ltr ax
  xor eax, eax
  mov ax, SEL_FLAT
  TRY "ltr data", ltr ax

  ; ---- accessed bit
  SETSEG es, FLAT
  and byte [es:GDT_BASE + SEL_SMALL + 5], 0xFE
  DUMPMEM "small desc", GDT_BASE + SEL_SMALL, 8
  mov ax, SEL_SMALL
  mov fs, ax
  DUMPMEM "small desc accessed", GDT_BASE + SEL_SMALL, 8
  SETSEG fs, SCR
  SETSEG es, SCR

  ; ---- LAR / LSL / VERR / VERW over the selectors
%assign sel 0
%rep 20
  mov eax, 0x11111111
  mov ebx, 0x22222222
  mov ecx, 0x33333333
  mov edx, sel
  SETFLAGS 0x002
  lar eax, dx
  lsl ebx, dx
  DUMP "lar/lsl", M_ALL
  SETFLAGS 0x8D7
  lar cx, dx
  DUMP "lar16", M_ALL
  SETFLAGS 0x002
  verr dx
  setz al
  verw dx
  setz ah
  mov edx, (sel | 3)
  verr dx
  setz bl
  lsl ecx, dx
  DUMP "verr/verw", M_ALL
%assign sel sel + 8
%endrep

  ; ---- ARPL
  mov eax, 0x0011
  mov ebx, 0x0023
  arpl ax, bx
  DUMP "arpl raise"
  arpl bx, ax
  DUMP "arpl no change"
  mov word [0x40], 0x0010
  mov cx, 0x0002
  arpl [0x40], cx
  mov edx, [0x40]
  DUMP "arpl mem"

  ; ---- SGDT / SIDT / SMSW
  mov dword [0x60], 0xEEEEEEEE
  mov dword [0x64], 0xEEEEEEEE
  mov dword [0x68], 0xEEEEEEEE
  mov dword [0x6C], 0xEEEEEEEE
  sgdt [0x60]
  sidt [0x68]
  smsw eax
  smsw bx
  DUMP "smsw"
  DUMPMEM "sgdt/sidt", SCRATCH + 0x60, 16

  ; ---- INT n beyond the IDT limit, through a not-present gate
  mov word [0x70], 0x7F
  mov dword [0x72], IDT_BASE
  mov dword [0x78], 256 * 8 - 1
  mov dword [0x7A], IDT_BASE
  lidt [0x70]
  TRY "int beyond idt limit", int 0x20
  lidt [0x78]
  SETSEG es, FLAT
  and byte [es:IDT_BASE + 0x41 * 8 + 5], 0x7F
  SETSEG es, SCR
  TRY "int np gate", int 0x41
  SETSEG es, FLAT
  or byte [es:IDT_BASE + 0x41 * 8 + 5], 0x80
  mov byte [es:IDT_BASE + 0x42 * 8 + 5], 0x85    ; task gate type with a bad TSS selector
  mov word [es:IDT_BASE + 0x42 * 8 + 2], SEL_FLAT
  SETSEG es, SCR
  TRY "int task gate to data", int 0x42
TEST_END

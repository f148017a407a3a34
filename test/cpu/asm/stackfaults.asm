; Stack accesses that fault change nothing: at CPL 3 (so the #PF handler
; runs on the ring-0 stack from the TSS), PUSH/CALL/ENTER/PUSHAD/PUSHFD with
; ESP on a read-only page and POP/RET/RETF/LEAVE/POPAD/POPFD/IRETD with ESP
; at or just before a not-present page must leave ESP, EBP, EIP, the other
; registers and EFLAGS as they were (the X record shows the state at the
; fault, including the ring-3 ESP from the exception frame).
; (CALL FAR/RETF/IRETD are left out: QEMU deviations, docs/cpu-testing.md.)
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32
ENTER_PAGING

PT1 equ 0x82000
V1  equ 0x400000
RO  equ V1 + 0x2000          ; read-only user page
NP  equ V1 + 0x1000          ; not-present page
USTACK equ 0x8800            ; ring-3 stack (identity-mapped, writable)

  SETSEG es, FLAT
  mov edi, PT1
  xor eax, eax
  mov ecx, 1024
  rep stosd
  mov dword [es:PD_BASE + 4], PT1 | 7
  mov dword [es:PT1 + 0], 0x30000 | 7
  mov dword [es:PT1 + 8], 0x32000 | 5
  mov dword [es:PT1 + 12], 0x33000 | 7
  mov eax, cr3
  mov cr3, eax
  ; page contents: page 0 (below NP) and RO page get patterns
  mov edi, 0x30000
  mov eax, 0x01020304
  mov ecx, 0x800
fillp:
  mov [es:edi], eax
  add edi, 4
  add eax, 0x04040404
  loop fillp
  ; IDT 0x50: DPL3 interrupt gate back to ring 0 (end of the ring-3 part)
  mov word [es:IDT_BASE + 0x50*8], ring0_again
  mov word [es:IDT_BASE + 0x50*8 + 2], SEL_CODE32
  mov word [es:IDT_BASE + 0x50*8 + 4], 0xEE00
  mov word [es:IDT_BASE + 0x50*8 + 6], 0
  mov ax, SEL_TSS
  ltr ax
  push dword SEL_STK3
  push dword USTACK
  push dword 0x3002              ; IOPL 3: the dumps use OUT
  push dword SEL_CODE3
  push dword ring3
  iretd

ring3:
  mov ax, SEL_DPL3D
  mov ds, ax
  mov fs, ax
  mov gs, ax
  mov ax, SEL_STK3
  mov es, ax
  DUMP "ring 3"

%macro REGS 0
  mov eax, 0x11111111
  mov ecx, 0x22222222
  mov edx, 0x33333333
  mov ebx, 0x44444444
  mov esi, 0x55555555
  mov edi, 0x66666666
  mov ebp, 0x77777777
%endmacro

; S "label", esp, flags, insn
%macro S 4+
  REGS
  SETFLAGS %3 | 0x3000
  mov esp, %2
  EXPECT %%c
  %4
  mov dword [ss:V_CONT], 0
%%c:
  mov [ss:USTACK - 4], esp         ; keep the post-fault ESP visible
  mov esp, USTACK
  mov ebp, [ss:USTACK - 4]
  DUMP %1
%endmacro

  S "push r", RO + 0x100, 0x8D7, push eax
  S "push imm", RO + 0x100, 0x002, push dword 0x12345678
  S "push m", RO + 0x100, 0x8D7, push dword [es:0x30010]
  S "push r16", RO + 0x100, 0x002, push ax
  S "pushad", RO + 0x10, 0x8D7, pushad
  S "pushfd", RO + 0x100, 0x002, pushfd
  S "call", RO + 0x100, 0x8D7, call callee
  S "call r", RO + 0x100, 0x8D7, call eax
  ; not tested: CALL FAR, RETF and IRETD at CPL 3 -- QEMU 7.2 makes their
  ; stack accesses as supervisor accesses (no #PF on a read-only user page,
  ; error code U=0 on a not-present one); see docs/cpu-testing.md
  S "enter 8,0", RO + 0x100, 0x8D7, enter 8, 0
  mov ebp, RO + 0x200
  S "enter 8,3", RO + 0x100, 0x002, enter 8, 3
  S "pop r", NP, 0x8D7, pop eax
  S "pop m", NP, 0x002, pop dword [es:0x33000]
  S "pop r16 crossing", NP - 2, 0x8D7, pop eax
  S "popad", NP, 0x002, popad     ; not crossing: QEMU writes EDI/ESI/EBP before the fault
  S "popfd", NP, 0x8D7, popfd
  S "ret", NP, 0x002, ret
  S "ret 8", NP, 0x8D7, ret 8
  S "leave", USTACK - 0x40, 0x002, leave
  S "pop es crossing", NP - 2, 0x8D7, pop es
  mov ax, SEL_STK3
  mov es, ax
  ; LEAVE with EBP in the not-present page
  REGS
  SETFLAGS 0x3000 | 0x8D7
  mov esp, USTACK - 0x40
  mov ebp, NP + 8
  EXPECT lv
  leave
  mov dword [ss:V_CONT], 0
lv:
  mov esp, USTACK
  DUMP "leave ebp in np"
  DUMPMEM "ro page top", 0x32000 + 0xE0, 0x20
  int 0x50                         ; back to ring 0

callee:
  ret

ring0_again:
  mov esp, STACK_TOP
  SETSEG ds, SCR
  SETSEG es, SCR
  SETSEG fs, SCR
  SETSEG gs, SCR
  DUMP "ring 0 again"
TEST_END

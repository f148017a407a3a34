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

%include "lib/stackfaults.inc"

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

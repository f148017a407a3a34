; Faulting accesses where QEMU (7.2, TCG) departs from the SDM (docs/cpu-testing.md,
; "QEMU deviations met here"): at CPL 3, CALL FAR / RETF / IRETD stack accesses are
; user accesses (#PF on a read-only user page, U=1 in the error code); a faulting
; POPAD, CMPXCHG or RCL m16 changes no register or flag. test/cpu/bochs.test.ts
; compares tsvm with Bochs on them; against QEMU (by hand) every mismatch is expected.
;   node dist/test/cpu/harness.js --bochs qemu-diff/stackfaults-diff
; (The set-up is stackfaults.asm's, in lib/stackfaults.inc.)
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32
ENTER_PAGING

%include "lib/stackfaults.inc"

  ; (ESP is placed so that only one of the stack accesses can fault: the SDM
  ; leaves their order open -- Bochs writes CS before EIP and reads CS or
  ; EFLAGS first -- so CR2 would differ inside one page)
  S "call far, EIP slot on the read-only page: #PF W U", RO + 0x1004, 0x8D7, call SEL_CODE3:callee_far
  S "retf, CS slot on the not-present page: #PF U", NP - 4, 0x8D7, retf
  S "iretd, EFLAGS slot on the not-present page: #PF U", NP - 8, 0x002, iretd
  S "popad midway: registers unchanged", NP - 0x10, 0x8D7, popad
  mov ecx, 0x99999999
  S "cmpxchg on a read-only page: flags unchanged", USTACK, 0x8D7, cmpxchg [es:RO + 0x100], ecx
  S "rcl m16 on a read-only page: flags unchanged", USTACK, 0x002, rcl word [es:RO + 0x100], 3
  S "rcl m16 on a read-only page, cf: flags unchanged", USTACK, 0x8D7, rcl word [es:RO + 0x100], 3
  int 0x50                         ; back to ring 0

callee_far:
  retf

ring0_again:
  mov esp, STACK_TOP
  SETSEG ds, SCR
  SETSEG es, SCR
  SETSEG fs, SCR
  SETSEG gs, SCR
  DUMP "ring 0 again"
TEST_END

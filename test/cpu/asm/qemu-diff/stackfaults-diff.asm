; Faulting accesses where QEMU (7.2, TCG) departs from the SDM (docs/cpu-testing.md,
; "QEMU deviations met here"): at CPL 3, CALL FAR / RETF / IRETD stack accesses are
; user accesses (#PF on a read-only user page, U=1 in the error code); a faulting
; POPAD, CMPXCHG or RCL m16 changes no register or flag. test/cpu/bochs.test.ts
; compares tsvm with Bochs on them; against QEMU (by hand) every mismatch is expected.
;   node dist/test/cpu/harness.js --bochs qemu-diff/stackfaults-diff
; (The set-up is stackfaults.asm's.)
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

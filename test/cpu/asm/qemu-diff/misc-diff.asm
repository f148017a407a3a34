; Instruction-level cases where QEMU (7.2, TCG) departs from the SDM (the
; "QEMU deviations met here" table of docs/cpu-testing.md): the ordinary
; programs leave them out, test/cpu/bochs.test.ts compares tsvm with Bochs on
; them. Against QEMU (by hand) every mismatch is expected; QEMU's run is lost
; at the RETF beyond the limit (it jumps there).
;   node dist/test/cpu/harness.js --bochs qemu-diff/misc-diff
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

  ; reserved reg fields of 8F /0, C6 /0, C7 /0: #UD (QEMU: POP / MOV)
  mov ebx, 0x100
  TRY "8f /1: #UD", db 0x8F, 0x0B                      ; pop [ebx] with reg=1
  TRY "c6 /1: #UD", db 0xC6, 0x0B, 0x55                ; mov byte [ebx], 0x55 with reg=1
  TRY "c7 /7: #UD", db 0xC7, 0x3B, 0x11, 0x22, 0x33, 0x44
  DUMPMEM "c6/c7 /r: memory unchanged", SCRATCH+0x100, 4
  ; LOCK MOV: #UD (QEMU: executes it)
  TRY "lock mov: #UD", db 0xF0, 0x89, 0x03             ; lock mov [ebx], eax
  ; F1 (INT1, ICEBP): a #DB trap, EIP after it (QEMU's pentium3: #UD)
  TRY "icebp: #DB", db 0xF1
  ; LTR with a null selector: #GP(0) (QEMU: loads a null TR)
  xor eax, eax
  TRY "ltr null: #GP(0)", ltr ax
  ; CALL FAR / JMP FAR / RETF beyond the CS limit (0xFFFF): #GP(0)
  ; (QEMU: #GP(selector), truncation to 16 bits, a jump there)
  TRY "call far beyond limit: #GP(0)", call SEL_CODE32:0x12345
  TRY "jmp far to code16, offset > 0xffff: #GP(0)", jmp dword SEL_CODE16:0x10000 + (.j16 - $$)
  push dword SEL_CODE32
  push dword 0x12345
  TRY "retf beyond limit: #GP(0)", retf
  add esp, 8
  ; MOV CR0 with NW=1 CD=0, or PG=1 PE=0: #GP(0) (QEMU loads it)
  mov ecx, cr0
  mov eax, ecx
  and eax, ~0x40000000
  or eax, 0x20000000
  TRY "mov cr0 nw=1 cd=0: #GP(0)", mov cr0, eax
  mov eax, ecx
  and eax, ~1
  or eax, 0x80000000
  TRY "mov cr0 pg=1 pe=0: #GP(0)", mov cr0, eax
  mov eax, cr0
  DUMP "cr0 unchanged"
  jmp .end
BITS 16
.j16:                                   ; (QEMU lands here)
  jmp dword SEL_CODE32:.end
BITS 32
.end:
  TEST_END

; x87 cases where QEMU (7.2, TCG) departs from the SDM and tsvm follows the
; SDM (docs/cpu-qemu-differences.md, the "x87" rows). Not part of the QEMU
; run; test/cpu/bochs.test.ts compares tsvm with Bochs on it. By hand:
;   node dist/test/cpu/harness.js --bochs qemu-diff/fpu-diff   (tsvm vs Bochs)
;   node dist/test/cpu/harness.js qemu-diff/fpu-diff           (every mismatch expected)
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

RES equ 0x100               ; DS base is SCRATCH
  jmp consts_end
align 16
c_third:  dt 0.333333333333333333333
c_d1:     dq 12345.6789
c_neg:    dq -2.5
c_small:  dq 0.7
consts_end:

%macro CW 1
  mov word [0x80], %1
  fldcw [0x80]
%endmacro
; the 28-byte FNSTENV image (FCW FSW FTW FIP, FCS|FOP, FDP, FDS); the reserved
; upper words of FCW, FSW, FTW and FDS are zeroed (Bochs writes 0xFFFF, QEMU
; and tsvm 0; the SDM leaves them reserved), then the area is cleared
%macro ENV 1
  fnstenv [RES]
  mov word [RES+2], 0
  mov word [RES+6], 0
  mov word [RES+10], 0
  mov word [RES+26], 0
  DUMPMEM %1, SCRATCH+RES, 28
  CLEARRES
%endmacro
%macro CLEARRES 0
  push es
  push ds
  pop es
  mov edi, RES
  mov ecx, 0x40
  xor eax, eax
  rep stosd
  pop es
%endmacro

  fninit
  ; FOP: the last non-control instruction's opcode (DE C1 -> 0x6C1) at +0x12
  fld1
  fld1
  faddp st1, st0
  ENV "faddp: FOP 0x6c1 (QEMU: 0)"

  ; FIP/FCS: control instructions (FNSTSW, FNCLEX) leave the last-instruction
  ; pointer on the FLD before them
  fninit
  fld qword [cs:c_d1]
  fnstsw ax
  fnclex
  ENV "fld; fnstsw: FIP of the fld (QEMU: of the fnstsw)"

  ; C1 after compares: cleared (set it first through FLDENV)
  fninit
  fld1
  fldz
  fnstenv [RES]
  or word [RES+4], 0x0200
  fldenv [RES]
  CLEARRES
  fcom st1
  fnstsw ax
  and eax, 0xFFFF
  DUMP "fcom: C1 cleared (QEMU: kept)"
  fninit
  fld1
  fldz
  fnstenv [RES]
  or word [RES+4], 0x0200
  fldenv [RES]
  CLEARRES
  fucomi st0, st1
  fnstsw ax
  and eax, 0xFFFF
  DUMP "fucomi: C1 cleared (QEMU: kept)"

  ; stack overflow: the 9th FLD sets IE SF C1 and loads the QNaN indefinite
  fninit
  %rep 9
  fld1
  %endrep
  fnstsw ax
  and eax, 0xFFFF
  fstp tword [RES]
  DUMP "stack overflow: IE SF C1 (QEMU: none)"
  DUMPMEM "stack overflow: indefinite", SCRATCH+RES, 10
  ; stack underflow: FADD of empty registers sets IE SF, C1 = 0
  fninit
  fadd st0, st1
  fnstsw ax
  and eax, 0xFFFF
  fstp tword [RES]
  DUMP "stack underflow: IE SF (QEMU: none)"
  DUMPMEM "stack underflow: indefinite", SCRATCH+RES, 10

  ; precision control 24 and 53 bits: results rounded once, to PC
  fninit
%macro PCARITH 2
  CW %1
  fld tword [cs:c_third]
  fld qword [cs:c_d1]
  fadd st0, st1
  fstp tword [RES]
  fld qword [cs:c_d1]
  fmul st0, st1
  fstp tword [RES+0x10]
  fld qword [cs:c_d1]
  fdiv st0, st1
  fstp tword [RES+0x20]
  fld qword [cs:c_small]
  fsub st0, st1
  fstp tword [RES+0x30]
  fsqrt
  fstp tword [RES+0x40]
  DUMPMEM %2, SCRATCH+RES, 0x50
  CLEARRES
%endmacro
  PCARITH 0x007F, "pc=24 nearest"
  PCARITH 0x027F, "pc=53 nearest"
  PCARITH 0x0C7F, "pc=24 toward zero"
  PCARITH 0x0E7F, "pc=53 toward zero"
  ; FPREM is exact: PC does not apply
  CW 0x007F
  fld qword [cs:c_d1]
  fld tword [cs:c_third]
  fprem
  fstp tword [RES]
  fld qword [cs:c_neg]
  fld qword [cs:c_d1]
  fprem
  fstp tword [RES+0x10]
  fninit
  DUMPMEM "fprem with pc=24", SCRATCH+RES, 0x20

  ; #MF (CR0.NE=1) at the next waiting x87 instruction, not only at FWAIT
  mov eax, cr0
  or eax, 0x20
  mov cr0, eax
  fninit
  CW 0x037B              ; unmask ZE
  fldz
  fld1
  fdiv st0, st1          ; ZE pending (ES)
  EXPECT .mf_done
  fld1                   ; SDM: #MF here, before the FLD
.mf_done:
  fnstsw ax
  and eax, 0xFFFF
  fnclex
  DUMP "#MF at the next x87 instruction (QEMU: none)"
  fninit
  TEST_END

; x87 FPU: loads and stores of every format, arithmetic in all rounding and
; precision modes, compares (FCOM/FUCOM/FCOMI/FTST/FXAM), integer and BCD
; conversions, stack over/underflow with masked responses, FSTENV/FSAVE images,
; #MF (CR0.NE=1) for an unmasked exception and #NM for CR0.TS.
; Transcendental results are compared after rounding to single precision: tsvm
; computes their finite results in double precision (docs/fpu.md).
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

RES equ 0x100               ; results go to SCRATCH+RES.. (DS base is SCRATCH)
  jmp consts_end
align 16
c_third:  dt 0.333333333333333333333
c_denorm: dq 0x0000000000000123
          dw 0x0000
c_snan:   dq 0xA000000000001234
          dw 0x7FFF
c_big:    dq 0x8000000000000000
          dw 0x7FF0
c_d1:     dq 12345.6789
c_neg:    dq -2.5
c_qnan:   dq __QNaN__
c_inf:    dq __Infinity__
c_small:  dq 0.7
c_half:   dq 0.5
c_tiny:   dq 0.2
c_s1:     dd 1.5e-3
c_w1:     dw -1234
c_dw1:    dd 7654321
c_q1:     dq -123456789012345
c_bcd:    dq 0x0000001234567890
          dw 0x8000           ; negative
consts_end:

%macro CW 1                 ; load control word %1
  mov word [0x80], %1
  fldcw [0x80]
%endmacro

%macro SHOW 1-2 0xFFFF      ; dump the result area and the status/tag words (status & %2)
  fnstsw [RES+0xF0]
  fnstenv [RES+0xC0]
  ; QEMU 7.2 does not record the last x87 opcode (FOP, the high word at +0x12 of
  ; the environment); tsvm stores it as the SDM says: not compared
  mov word [RES+0xD2], 0
  and word [RES+0xF0], %2
  and word [RES+0xC4], %2
  DUMPMEM %1, SCRATCH+RES, 0x100
  mov edi, RES
  mov ecx, 0x40
  xor eax, eax
  rep stosd
%endmacro

  mov edi, RES
  mov ecx, 0x40
  xor eax, eax
  rep stosd
  fninit

; ---- loads and stores -------------------------------------------------------
  fld tword [cs:c_third]
  fstp tword [RES]
  fld qword [cs:c_d1]
  fst qword [RES+0x10]
  fstp dword [RES+0x18]
  fld dword [cs:c_s1]
  fstp tword [RES+0x20]
  fild word [cs:c_w1]
  fistp dword [RES+0x30]
  fild dword [cs:c_dw1]
  fistp qword [RES+0x38]
  fild qword [cs:c_q1]
  fstp tword [RES+0x40]
  fbld [cs:c_bcd]
  fbstp [RES+0x50]
  fld tword [cs:c_denorm]
  fstp tword [RES+0x60]
  fld tword [cs:c_snan]
  fstp tword [RES+0x70]
  fld1
  fldl2t
  fldl2e
  fldpi
  fldlg2
  fldln2
  fldz
  fstp dword [RES+0x80]
  fstp tword [RES+0x84]
  fstp tword [RES+0x8E]
  fstp tword [RES+0x98]
  fstp tword [RES+0xA2]
  fstp tword [RES+0xAC]
  fstp dword [RES+0xB6]
  SHOW "loads/stores"

; ---- arithmetic in each rounding and precision mode ----------------------------
%macro ARITH 1
  CW %1
  fld tword [cs:c_third]
  fld qword [cs:c_d1]
  fadd st0, st1
  fstp tword [RES]
  fld qword [cs:c_d1]
  fsub st0, st1
  fstp tword [RES+0x10]
  fld qword [cs:c_d1]
  fmul st0, st1
  fstp tword [RES+0x20]
  fld qword [cs:c_d1]
  fdiv st0, st1
  fstp tword [RES+0x30]
  fld qword [cs:c_d1]
  fdivr st0, st1
  fstp tword [RES+0x40]
  fsqrt
  fld st0
  fstp tword [RES+0x50]
  frndint
  fstp tword [RES+0x60]
  fld qword [cs:c_d1]
  fld tword [cs:c_third]
  fprem
  fstp tword [RES+0x70]
  fld tword [cs:c_third]
  fprem1
  fstp tword [RES+0x80]
  fstp st0
  fld qword [cs:c_d1]
  fistp dword [RES+0x90]
  fld qword [cs:c_neg]
  fistp word [RES+0x94]
  fld qword [cs:c_d1]
  fxtract
  fstp tword [RES+0x98]
  fstp tword [RES+0xA2]
  fild dword [cs:c_dw1]
  fld1
  fscale
  fstp tword [RES+0xAC]
  fstp st0
  SHOW "arith"
%endmacro
  ARITH 0x037F   ; nearest, extended
  ARITH 0x077F   ; down
  ARITH 0x0B7F   ; up
  ARITH 0x0F7F   ; toward zero
  ; Reduced precision control is not compared: QEMU 7.2 misrounds some results
  ; with PC=24/53 bits and applies PC to FPREM (docs/cpu-qemu-differences.md);
  ; the unit tests check those against results recorded on real hardware.
  CW 0x037F

; ---- compares -------------------------------------------------------------------
%macro CMPS 2    ; a, b (qword constants)
  fld qword [cs:%2]
  fld qword [cs:%1]
  fcom st1
  fnstsw ax
  mov [RES], ax
  fucom st1
  fnstsw ax
  mov [RES+2], ax
  and eax, 0xFDFF
  fcomi st0, st1
  DUMP "fcomi", (F_ZF|F_PF|F_CF)
  fucomip st0, st1
  DUMP "fucomip", (F_ZF|F_PF|F_CF)
  ftst
  fnstsw ax
  mov [RES+4], ax
  fxam
  fnstsw ax
  mov [RES+6], ax
  fcomp qword [cs:%2]
  fnstsw ax
  mov [RES+8], ax
  fnclex
  ; QEMU 7.2 leaves C1 as it was on compares; the SDM (and tsvm) clear it
  and dword [RES], 0xFDFFFDFF
  and dword [RES+4], 0xFDFFFDFF
  and word [RES+8], 0xFDFF
  ; QEMU 7.2 also moves the last-instruction pointer on FNSTSW AX (a control
  ; instruction, which the SDM says leaves it): end on a non-control one
  fld1
  fstp st0
  SHOW "compares", 0xFDFF
%endmacro
  CMPS c_d1, c_neg
  CMPS c_neg, c_d1
  CMPS c_d1, c_d1
  CMPS c_qnan, c_d1
  CMPS c_inf, c_d1

; ---- masked invalid, zero-divide, overflow -----------------------------------------
; (Stack overflow and underflow are not compared: QEMU 7.2 does not detect them;
; the unit tests check them against real hardware.)
  fninit
  fldz
  fld1
  fdiv st0, st1          ; 1/0 -> +inf, ZE
  fstp tword [RES]
  fld qword [cs:c_neg]
  fsqrt                  ; sqrt(-x) -> indefinite, IE
  fstp tword [RES+0x10]
  fld tword [cs:c_big]
  fmul st0, st0          ; overflow -> inf, OE PE
  fstp tword [RES+0x20]
  fstp st0
  SHOW "masked exceptions", 0xB8FF    ; C0 C2 C3 are undefined after arithmetic

; ---- FSAVE / FRSTOR ------------------------------------------------------------------
  fninit
  fld1
  fldpi
  fld tword [cs:c_third]
  fnsave [0x200]
  mov word [0x212], 0    ; FOP: not recorded by QEMU 7.2
  DUMPMEM "fnsave image", SCRATCH+0x200, 108
  frstor [0x200]
  fstp tword [RES]
  fstp tword [RES+0x10]
  fstp tword [RES+0x20]
  SHOW "frstor"

; ---- transcendentals, compared in single precision ---------------------------------------
  fninit
  fld qword [cs:c_small]
  fsin
  fstp dword [RES]
  fld qword [cs:c_small]
  fcos
  fstp dword [RES+4]
  fld qword [cs:c_small]
  fptan
  fstp dword [RES+8]
  fstp dword [RES+12]
  fld1
  fld qword [cs:c_small]
  fpatan
  fstp dword [RES+16]
  fld qword [cs:c_half]
  f2xm1
  fstp dword [RES+20]
  fld1
  fld qword [cs:c_d1]
  fyl2x
  fstp dword [RES+24]
  fld1
  fld qword [cs:c_tiny]
  fyl2xp1
  fstp dword [RES+28]
  fldz
  fsincos
  fstp dword [RES+32]
  fstp dword [RES+36]
  SHOW "transcendental"

; ---- #MF with CR0.NE and an unmasked exception; #NM with CR0.TS ---------------------------------
  mov eax, cr0
  or eax, 0x20
  mov cr0, eax
  fninit
  CW 0x037B              ; unmask ZE
  fldz
  fld1
  fdiv st0, st1          ; sets ES; the next waiting instruction reports #MF
  ; (QEMU 7.2 reports it only at FWAIT, not at the next x87 instruction as the
  ; SDM says; FWAIT is where both agree)
  EXPECT .mf_done
  fwait
.mf_done:
  fnstsw ax
  fnclex
  DUMP "after #MF"
  fninit
  mov eax, cr0
  or eax, 8
  mov cr0, eax
  EXPECT .nm_done
  fld1
.nm_done:
  clts
  DUMP "after #NM"

TEST_END


; x87 memory operands that cross a segment limit: the instruction faults
; (#GP(0)) before it writes anything and changes no x87 state (SDM vol. 2:
; "#GP(0) if a memory operand effective address is outside the DS, ES, FS or
; GS segment limit"; a faulting instruction is restartable).  QEMU (7.2, TCG)
; checks no data segment limit, so test/cpu/bochs.test.ts compares tsvm with
; Bochs here: the stores and loads Bochs makes in one piece, and those whose
; first piece is already outside.  Images Bochs writes or reads in several
; pieces (FNSTENV, FNSAVE, FXSAVE, FSTP m80, FBSTP, FLDENV, FRSTOR) crossing the limit
; are in bochs-diff/fpu-image-limit.asm: Bochs leaves the first pieces done.
;   node dist/test/cpu/harness.js --bochs qemu-diff/fpu-seglimit-diff
; Environment images use the 16-bit layout (o16: Bochs writes 0xFFFF in the
; reserved words of the 32-bit one, tsvm and QEMU 0) with FIP, FDP, FDS cleared
; (whether an instruction that faults on its memory operand updates them is
; not architectural: Bochs does, tsvm does not).
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

; fill SCRATCH + 0 .. 0x1FF (ES base SCRATCH) with 0x5A
%macro FILL 0
  mov edi, 0
  mov ecx, 0x200
  mov al, 0x5A
  rep stosb
%endmacro

; three registers and a non-default control word
%macro LOADFPU 0
  fninit
  fld1
  fldpi
  fldl2t
  mov word [0x1F0], 0x0B7F
  fldcw [0x1F0]
  mov word [0x1F0], 0x5A5A
%endmacro

; the 14-byte environment at DS:%2 with FIP, FDP and FDS cleared
%macro ENV 2
  o16 fnstenv [%2]
  mov word [%2 + 6], 0
  mov word [%2 + 10], 0
  mov word [%2 + 12], 0
  DUMPMEM %1, SCRATCH + %2, 14
%endmacro

  LOADFPU
  FILL
  mov ax, SEL_SMALL              ; FS: base SCRATCH, byte-granular limit 0xFF
  mov fs, ax
  TRY "fistp m64 crossing", fistp qword [fs:0xF9]
  TRY "fst m64 crossing", fst qword [fs:0xFA]
  TRY "fst m32 crossing", fst dword [fs:0xFD]
  TRY "fnstcw crossing", fnstcw [fs:0xFF]
  TRY "fnstsw crossing", fnstsw [fs:0xFF]
  TRY "fnsave past the limit", fnsave [fs:0x100]
  TRY "fxsave past the limit", fxsave [fs:0x100]
  DUMPMEM "memory after the faults", SCRATCH, 0x200
  ; nothing changed: the three registers are still there (no pop)
  ENV "env after the faults", 0x1C0
  TRY "fstp m80 ending at the limit", fstp tword [fs:0xF6]
  DUMPMEM "fstp image at the limit", SCRATCH + 0xF6, 10
  ; loads that cross the limit fault before anything is loaded
  TRY "fld m80 crossing", fld tword [fs:0xF8]
  TRY "fild m64 crossing", fild qword [fs:0xFC]
  ENV "env after the loads", 0x1C0
  TRY "o16 fnsave inside", o16 fnsave [fs:0x90]
  mov word [0x90 + 6], 0
  mov word [0x90 + 10], 0
  mov word [0x90 + 12], 0
  DUMPMEM "fnsave image inside", SCRATCH + 0x90, 94
  TRY "o16 frstor inside", o16 frstor [fs:0x90]
  ENV "env after frstor", 0x1C0
  ; a read-only segment: nothing is written
  FILL
  mov ax, SEL_RO
  mov gs, ax
  TRY "fnsave to read-only", o16 fnsave [gs:0x10]
  TRY "fnstenv to read-only", o16 fnstenv [gs:0x10]
  TRY "fstp m80 to read-only", fstp tword [gs:0x10]
  TRY "fxsave to read-only", fxsave [gs:0x10]
  DUMPMEM "read-only area", SCRATCH, 0x80
  ENV "env at the end", 0x1C0
TEST_END

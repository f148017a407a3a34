; A case where Bochs (2.7) departs from the SDM and tsvm follows the SDM.
; Not part of the QEMU differential run; test/cpu/bochs.test.ts runs it on
; tsvm and Bochs and expects exactly the differences listed there
; (KNOWN_DIFFERENCES); docs/cpu-qemu-differences.md explains.
;
; x87 and FXSAVE images that cross a segment limit.  The SDM raises #GP(0)
; for a memory operand outside the limit, and a faulting instruction is
; restartable: tsvm checks the whole image first and writes nothing.  Bochs
; writes the image piece by piece and faults at the first piece outside the
; limit, leaving the pieces before it written; in real mode it wraps the
; pieces of FNSAVE at offset 0xFFFF instead of faulting (the SDM: #GP if any
; part of the operand lies outside 0..0xFFFF).
%include "lib/harness.inc"
TEST_BEGIN
  fninit
  fld1
  fldpi
  mov ax, 0x1000                 ; DS = ES = SCRATCH >> 4
  mov es, ax
  mov di, 0xFF00
  mov cx, 0x100
  mov al, 0x5A
  rep stosb
  xor di, di
  mov cx, 0x40
  rep stosb
  TRY "fnsave crossing 0xFFFF", fnsave [0xFFC0]
  DUMPMEM "fnsave crossing 0xFFFF memory", SCRATCH + 0xFFC0, 0x10
ENTER_PM32
  mov ax, SEL_SMALL              ; FS: base SCRATCH, byte-granular limit 0xFF
  mov fs, ax
  mov edi, 0xE0
  mov ecx, 0x20
  mov al, 0x5A
  rep stosb
  TRY "o16 fnstenv crossing", o16 fnstenv [fs:0xF4]
  DUMPMEM "o16 fnstenv crossing memory", SCRATCH + 0xF0, 0x10
  TRY "fxsave crossing", fxsave [fs:0xF0]
  DUMPMEM "fxsave crossing memory", SCRATCH + 0xF0, 0x10
  mov edi, 0xE0
  mov ecx, 0x20
  mov al, 0x5A
  rep stosb
  TRY "fbstp crossing", fbstp [fs:0xF7]
  DUMPMEM "fbstp crossing memory", SCRATCH + 0xF0, 0x10
  mov edi, 0xE0
  mov ecx, 0x20
  mov al, 0x5A
  rep stosb
  TRY "fstp m80 crossing", fstp tword [fs:0xF8]
  DUMPMEM "fstp m80 crossing memory", SCRATCH + 0xF0, 0x10
  ; a load: FLDENV crossing the limit must not change the environment
  mov word [0xF8], 0x0B7F
  TRY "o16 fldenv crossing", o16 fldenv [fs:0xF8]
  o16 fnstenv [0x1C0]
  DUMPMEM "fcw after fldenv crossing", SCRATCH + 0x1C0, 2
  mov edi, 0xC0
  mov ecx, 0x40
  mov al, 0x5A
  rep stosb
  TRY "o16 frstor crossing", o16 frstor [fs:0xC0]
  o16 fnstenv [0x1C0]
  DUMPMEM "fcw fsw after frstor crossing", SCRATCH + 0x1C0, 4
TEST_END

; SHL SHR SAR ROL ROR RCL RCR by 1, by CL and by imm8 (counts 0..33 and 0xFF),
; 8/16/32-bit, register and memory; SHLD SHRD by CL and imm8.
; Undefined flags are masked per count (lib/loops.inc SHIFTMASK): AF after any
; non-zero shift, OF after multi-bit shifts/rotates, CF of SHL/SHR when
; count >= operand size.  SHLD/SHRD 16-bit counts > 16 are not tested (result
; undefined).
%include "lib/harness.inc"
TEST_BEGIN

MEMOP equ 0x40

DATA
mt_SH8:  MASKTAB SH, 8
mt_SH16: MASKTAB SH, 16
mt_SH32: MASKTAB SH, 32
mt_SAR8: MASKTAB SAR, 8
mt_SAR16: MASKTAB SAR, 16
mt_SAR32: MASKTAB SAR, 32
mt_ROT:  MASKTAB ROT, 32
mt_DBL:  MASKTAB DBL, 32
ENDDATA

; body helper: mask for count index edi -> V_DMASK, ecx = count
%macro CNTSETUP 1
  mov ecx, [cs:%1 + edi*4]
  mov [ss:V_DMASK], ecx
  mov ecx, ebx
%endmacro

; SH_CL op, class(SH|SAR|ROT), both_flags
%macro SH_CL 3
  %defstr %%s %1
  %strcat %%l8 %%s, "8 r,cl"
  %strcat %%l16 %%s, "16 r,cl"
  %strcat %%l32 %%s, "32 r,cl"
  %strcat %%lm %%s, "32 m,cl"
  %ifidn %2,ROT
    %define %%m8 mt_ROT
    %define %%m16 mt_ROT
    %define %%m32 mt_ROT
  %else
    %define %%m8 mt_%[%2]8
    %define %%m16 mt_%[%2]16
    %define %%m32 mt_%[%2]32
  %endif
  PAIRS vals8, %3, 0xA5A5A500, counts
    CNTSETUP %%m8
    %1 al, cl
    DUMPV %%l8
  ENDPAIRS
  PAIRS vals16, %3, 0xA5A50000, counts
    CNTSETUP %%m16
    %1 ax, cl
    DUMPV %%l16
  ENDPAIRS
  PAIRS vals32, %3, 0, counts
    CNTSETUP %%m32
    %1 eax, cl
    DUMPV %%l32
    mov [MEMOP], edx
    %1 dword [MEMOP], cl
    mov eax, [MEMOP]
    DUMPV %%lm
  ENDPAIRS
%endmacro


%macro SH_IMM 3 ; op, class, size-reg
  %defstr %%s %1
  %defstr %%r %3
  %strcat %%l %%s, " ", %%r, ",imm"
  %strcat %%l1 %%s, " ", %%r, ",1"
  SINGLES vals32
    %assign %%k 0
    %rep CNT_N
      mov eax, edx
      %1 %3, strict byte CNT_%[%%k]
      SHIFTMASK %2, 32, CNT_%[%%k]
      DUMP %%l, SHM
      %assign %%k %%k+1
    %endrep
    mov eax, edx
    %1 %3, 1
    SHIFTMASK %2, 32, 1
    DUMP %%l1, SHM
  ENDSINGLES
%endmacro

%macro SH_IMM_SMALL 4 ; op, class, reg, size
  %defstr %%s %1
  %defstr %%r %3
  %strcat %%l %%s, " ", %%r, ",imm"
  %strcat %%l1 %%s, " ", %%r, ",1"
  SINGLES vals8, 0x5A5A5A00
    %assign %%k 0
    %rep CNT_N
      mov eax, edx
      %1 %3, strict byte CNT_%[%%k]
      SHIFTMASK %2, %4, CNT_%[%%k]
      DUMP %%l, SHM
      %assign %%k %%k+1
    %endrep
    mov eax, edx
    %1 %3, 1
    SHIFTMASK %2, %4, 1
    DUMP %%l1, SHM
    mov [MEMOP], edx
    %1 byte [MEMOP], 1
    mov eax, [MEMOP]
    DUMP %%l1, SHM
  ENDSINGLES
%endmacro

; SHLD/SHRD: dest eax/ax, source ebx/bx
%macro DBL 1
  %defstr %%s %1
  %strcat %%l16 %%s, "16 r,r,cl"
  %strcat %%l32 %%s, "32 r,r,cl"
  %strcat %%lm %%s, "32 m,r,cl"
  %strcat %%li %%s, " imm"
  PAIRS vals16, 0, 0x12340000, counts_dbl16
    CNTSETUP mt_DBL
    mov ebx, 0x8001C3A5
    %1 ax, bx, cl
    DUMPV %%l16
  ENDPAIRS
  PAIRS vals32, 0, 0, counts
    CNTSETUP mt_DBL
    mov ebx, 0xC3A58001
    %1 eax, ebx, cl
    DUMPV %%l32
    mov [MEMOP], edx
    mov ebx, 0x00FF00FF
    %1 [MEMOP], ebx, cl
    mov eax, [MEMOP]
    DUMPV %%lm
  ENDPAIRS
  SINGLES vals32
    mov ebx, 0x96696996
    %1 eax, ebx, 0
    DUMP %%li
    mov eax, edx
    %1 eax, ebx, 1
    DUMP %%li, M_NOAF
    mov eax, edx
    %1 eax, ebx, 31
    DUMP %%li, M_NOAF & ~F_OF
    mov eax, edx
    %1 eax, ebx, 33
    DUMP %%li, M_NOAF
    mov eax, edx
    %1 ax, bx, 15
    DUMP %%li, M_NOAF & ~F_OF
  ENDSINGLES
%endmacro

%macro BODY 0
  SH_CL shl, SH, 0
  SH_CL shr, SH, 0
  SH_CL sar, SAR, 0
  SH_CL rol, ROT, 0
  SH_CL ror, ROT, 0
  SH_CL rcl, ROT, 1
  SH_CL rcr, ROT, 1
  SH_IMM shl, SH, eax
  SH_IMM shr, SH, eax
  SH_IMM sar, SAR, eax
  SH_IMM rol, ROT, eax
  SH_IMM ror, ROT, eax
  SH_IMM rcl, ROT, eax
  SH_IMM rcr, ROT, eax
  SH_IMM_SMALL shl, SH, al, 8
  SH_IMM_SMALL sar, SAR, ah, 8
  SH_IMM_SMALL rcr, ROT, al, 8
  SH_IMM_SMALL rol, ROT, bl, 8
  SH_IMM_SMALL shr, SH, ax, 16
  SH_IMM_SMALL rcl, ROT, bx, 16
  SH_IMM_SMALL ror, ROT, ax, 16
  DBL shld
  DBL shrd
  ; SAL alias encodings (/6): D1 /6, C1 /6 ib, D3 /6
  SINGLES vals32
    %if __BITS__ == 16
      db 0x66
    %endif
    db 0xD1, 0xF0          ; sal eax, 1 via /6
    DUMP "sal/6 eax,1", M_NOAF
    mov eax, edx
    %if __BITS__ == 16
      db 0x66
    %endif
    db 0xC1, 0xF0, 3       ; sal eax, 3 via /6
    DUMP "sal/6 eax,3", M_NOAF & ~F_OF
  ENDSINGLES
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

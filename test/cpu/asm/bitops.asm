; BT BTS BTR BTC (register; memory with large positive/negative bit offsets;
; imm8), BSF BSR (incl. zero source), SETcc, CMOVcc, BSWAP, XADD, CMPXCHG,
; CMPXCHG8B, XCHG, MOVZX, MOVSX, LEA (16- and 32-bit addressing forms), XLAT,
; LAHF, SAHF, CBW, CWDE, CWD, CDQ.
; Masked flags: BTx: OF SF AF PF; BSF/BSR: CF OF SF AF PF.  BSF/BSR with a
; zero source leave the destination unchanged in QEMU (and on real CPUs; the
; SDM says "undefined"): this is compared.
%include "lib/harness.inc"
TEST_BEGIN

%define M_BT (M_ALL & ~(F_OF|F_SF|F_AF|F_PF))
%define M_BS (M_ALL & ~(F_CF|F_OF|F_SF|F_AF|F_PF))
BTBASE equ 0x800

DATA
bitoffs:
  dd 0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 100, 0x7FF
  dd -1, -8, -32, -33, -100, -0x800
bitoffs_N equ ($ - bitoffs) / 4
flags16:                     ; every combination of CF PF ZF SF OF
%assign k 0
%rep 32
  dd 0x002 | ((k & 1) * F_CF) | (((k >> 1) & 1) * F_PF) | (((k >> 2) & 1) * F_ZF) | (((k >> 3) & 1) * F_SF) | (((k >> 4) & 1) * F_OF)
%assign k k+1
%endrep
ENDDATA

%macro BTOPS 1
  %defstr %%s %1
  %strcat %%l16 %%s, "16 r,r"
  %strcat %%l32 %%s, "32 r,r"
  %strcat %%lm16 %%s, "16 m,r"
  %strcat %%lm32 %%s, "32 m,r"
  %strcat %%li %%s, " imm"
  PAIRS vals32, 0, 0, bitoffs
    %1 eax, ebx
    DUMP %%l32, M_BT
    mov eax, edx
    %1 ax, bx
    DUMP %%l16, M_BT
    ; memory operand, bit offset in ebx (signed), a32 addressing
    mov ecx, ebx
    sar ecx, 5
    mov [ecx*4 + BTBASE], eax
    xor ecx, ecx
    %1 dword [ecx + BTBASE], ebx
    mov ecx, ebx
    sar ecx, 5
    mov ecx, [ecx*4 + BTBASE]
    DUMP %%lm32, M_BT
    mov ecx, ebx
    movsx ecx, cx
    sar ecx, 4
    mov [ecx*2 + BTBASE], ax
    xor ecx, ecx
    %1 word [ecx + BTBASE], bx
    mov ecx, ebx
    movsx ecx, cx
    sar ecx, 4
    movzx ecx, word [ecx*2 + BTBASE]
    DUMP %%lm16, M_BT
  ENDPAIRS
  SINGLES vals32
    %1 eax, 31
    DUMP %%li, M_BT
    %1 eax, 33
    DUMP %%li, M_BT
    %1 ax, 15
    DUMP %%li, M_BT
    %1 ax, 0x11
    DUMP %%li, M_BT
    mov [BTBASE], edx
    %1 dword [BTBASE], 0x27
    mov ebx, [BTBASE]
    DUMP %%li, M_BT
    %1 word [BTBASE], 0xFF
    mov ebx, [BTBASE]
    DUMP %%li, M_BT
  ENDSINGLES
%endmacro

%macro BODY 0
  BTOPS bt
  BTOPS bts
  BTOPS btr
  BTOPS btc

  ; BSF/BSR: dest preloaded with a marker (kept when the source is 0)
  PAIRS vals32, 0
    mov ecx, 0xDEADBEEF
    bsf ecx, eax
    DUMP "bsf32", M_BS
    mov ecx, 0xDEADBEEF
    bsr ecx, ebx
    DUMP "bsr32", M_BS
    mov ecx, 0xDEADBEEF
    bsf cx, ax
    DUMP "bsf16", M_BS
    mov ecx, 0xDEADBEEF
    bsr cx, bx
    DUMP "bsr16", M_BS
    mov [0x40], ebx
    mov ecx, 0x12345678
    bsf ecx, [0x40]
    DUMP "bsf32 m", M_BS
    bsr cx, [0x42]
    DUMP "bsr16 m", M_BS
  ENDPAIRS

  ; SETcc and CMOVcc for every combination of CF PF ZF SF OF
  xor esi, esi
%%setloop:
  mov eax, [cs:flags16 + esi*4]
  mov [ss:V_TMP], eax
  push dword [ss:V_TMP]
  popfd
  seto [0x40]
  setno [0x41]
  setb [0x42]
  setae [0x43]
  sete [0x44]
  setne [0x45]
  setbe [0x46]
  seta [0x47]
  sets [0x48]
  setns [0x49]
  setp [0x4A]
  setnp [0x4B]
  setl [0x4C]
  setge [0x4D]
  setle [0x4E]
  setg [0x4F]
  mov eax, 0x11111111
  mov ebx, 0x22222222
  mov ecx, 0x33333333
  mov edx, 0x44444444
  mov edi, 0x55555555
  mov dword [0x60], 0x66666666
  cmovo eax, ebx
  cmovno ecx, edx
  cmovb edx, edi
  cmovae edi, [0x60]
  setl bl
  sete bh
  DUMP "cmov 1"
  cmove ax, cx
  cmovne cx, [0x60]
  cmovbe edx, eax
  cmova ebx, ecx
  cmovs edi, eax
  DUMP "cmov 2"
  cmovns eax, [0x60]
  cmovp ebx, edx
  cmovnp ecx, edi
  cmovl edx, ecx
  cmovge edi, ebx
  cmovle eax, edx
  cmovg bx, di
  DUMP "cmov 3"
  DUMPMEM "setcc", SCRATCH + 0x40, 16
  inc esi
  cmp esi, 32
  jb %%setloop

  ; BSWAP, CBW/CWDE/CWD/CDQ, MOVZX/MOVSX, LAHF
  SINGLES vals32
    bswap eax
    DUMP "bswap"
    bswap ebx
    mov ecx, edx
    bswap ecx
    bswap edi
    bswap esi
    bswap esp
    bswap esp
    bswap esi
    DUMP "bswap regs"
    mov eax, edx
    cbw
    DUMP "cbw"
    mov eax, edx
    cwde
    DUMP "cwde"
    mov eax, edx
    cwd
    DUMP "cwd"
    mov eax, edx
    cdq
    DUMP "cdq"
    mov [0x40], edx
    movzx ebx, dl
    movzx ecx, dh
    movsx edi, dl
    movsx ebp, dx
    DUMP "movzx/movsx r"
    movzx bx, dl
    movsx cx, dh
    movzx edi, word [0x42]
    movsx ebp, byte [0x41]
    movsx eax, word [0x41]
    DUMP "movzx/movsx m"
    mov eax, edx
    lahf
    DUMP "lahf"
  ENDSINGLES

  ; SAHF/LAHF for every AH
  xor esi, esi
%%sahf:
  mov eax, esi
  shl eax, 8
  or eax, 0x12340055
  SETFLAGS 0x8D7 ^ 0x8D5
  sahf
  DUMP "sahf"
  SETFLAGS 0x8D7
  mov eax, esi
  shl eax, 8
  sahf
  lahf
  DUMP "sahf/lahf"
  inc esi
  cmp esi, 256
  jb %%sahf

  ; XADD, CMPXCHG, XCHG
  PAIRS vals32, 0
    xadd eax, ebx
    DUMP "xadd32 r,r"
    mov [0x40], edx
    xadd [0x40], bl
    mov ecx, [0x40]
    DUMP "xadd8 m,r"
    mov [0x40], edx
    xadd [0x40], bx
    mov ecx, [0x40]
    DUMP "xadd16 m,r"
    mov eax, edx
    mov ecx, 0x5555AAAA
    cmpxchg ebx, ecx
    DUMP "cmpxchg32 r"
    mov eax, edx
    mov ebx, edx
    cmpxchg ebx, ecx
    DUMP "cmpxchg32 r eq"
    mov ebx, [cs:vals32 + edi*4]
    mov [0x40], ebx
    mov eax, edx
    cmpxchg [0x40], cx
    mov ebx, [0x40]
    DUMP "cmpxchg16 m"
    mov [0x40], edx
    mov eax, edx
    cmpxchg [0x40], cl
    mov ebx, [0x40]
    DUMP "cmpxchg8 m eq"
    mov eax, edx
    mov ebx, [cs:vals32 + edi*4]
    xchg eax, ebx
    xchg cl, dh
    xchg bx, dx
    DUMP "xchg r,r"
    mov [0x40], eax
    xchg [0x40], ebx
    xchg [0x41], ch
    xchg dx, [0x42]
    mov ecx, [0x40]
    DUMP "xchg m,r"
    xchg ax, bx
    xchg eax, ecx
    xchg eax, edx
    xchg ax, bp
    DUMP "xchg ax,r"
  ENDPAIRS

  ; CMPXCHG8B: equal and not equal; flags other than ZF are preserved
  PAIRS vals32, 0
    mov [ss:V_TMP2], esi
    mov [0x40], eax
    mov [0x44], ebx
    mov ecx, 0xC1C2C3C4
    mov ebx, 0xB1B2B3B4
    mov edx, [0x44]
    cmpxchg8b [0x40]
    mov esi, [0x40]
    mov ebp, [0x44]
    DUMP "cmpxchg8b eq"
    mov esi, [ss:V_TMP2]      ; esi clobbered above: reload index from V_TMP2
    mov eax, [cs:vals32 + edi*4]
    mov edx, 0x11111111
    cmpxchg8b [0x40]
    DUMP "cmpxchg8b ne"
    mov ebp, 0
    mov esi, [ss:V_TMP2]
  ENDPAIRS

  ; LEA: 16-bit addressing forms
  mov ebx, 0x89AB1234
  mov esi, 0xFEDC8001
  mov edi, 0x76540FFF
  mov ebp, 0x0000FFFE
  lea ax, [bx+si]
  lea cx, [bx+di+0x7F]
  lea dx, [bp+si-0x80]
  DUMP "lea a16 1"
  lea ax, [bp+di+0x1234]
  lea cx, [si]
  lea dx, [di-1]
  DUMP "lea a16 2"
  lea ax, [bp]
  lea cx, [0x8765]
  lea edx, [bx+0xFFFF]
  DUMP "lea a16 3"
  lea eax, [bx+si]
  lea cx, [bx+si+0x8000]
  DUMP "lea a16 4"
  ; LEA: 32-bit addressing forms
  lea eax, [ebx+esi]
  lea ecx, [ebx+esi*2+0x7F]
  lea edx, [ebp+edi*4-0x80]
  DUMP "lea a32 1"
  lea eax, [esi*8+0x12345678]
  lea ecx, [esp+ebx*2]
  lea edx, [esp-4]
  DUMP "lea a32 2"
  lea eax, [ebp+0x80000000]
  lea ecx, [edi+edi*8]
  lea dx, [ebx+esi*4+0x100]
  DUMP "lea a32 3"
  lea eax, [dword 0xFFFFFFFF]
  lea ecx, [ebx*1]
  lea edx, [eax+eax]
  DUMP "lea a32 4"
  lea edx, [ebp*4+1]
  lea ax, [esi+edi]
  DUMP "lea a32 5"

  ; XLAT: table at DS:0x100 (pattern i ^ 0xA5), 16- and 32-bit address size
  xor esi, esi
%%xf:
  mov eax, esi
  xor al, 0xA5
  mov [esi+0x100], al
  inc esi
  cmp esi, 0x100
  jb %%xf
  mov ebx, 0xFFFF0100
  mov eax, 0x12345680
  a16 xlatb
  DUMP "xlat a16"
  mov ebx, 0x100
  mov eax, 0x123456FF
  a32 xlatb
  DUMP "xlat a32"
  mov ebx, 0x180
  mov al, 0x7F
  SETSEG fs, SCR
  fs xlatb
  DUMP "xlat fs:"
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

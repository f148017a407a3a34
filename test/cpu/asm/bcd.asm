; DAA DAS AAA AAS AAM AAD for every AL value with CF/AF in all combinations.
; Undefined flags (masked): DAA/DAS OF; AAA/AAS OF SF ZF PF; AAM/AAD OF AF CF.
; AAM 0 raises #DE.  AAM/AAD with bases other than 10 are also tested.
%include "lib/harness.inc"
TEST_BEGIN

DATA
bcd_flags:
  dd 0x002, 0x003, 0x012, 0x013     ; -, CF, AF, CF+AF (with SF/ZF/PF/OF clear)
  dd 0x8C6, 0x8D7                   ; other flags set, with and without CF/AF
bcd_flags_N equ ($ - bcd_flags) / 4
ENDDATA

; BCDLOOP: ESI = AL 0..255, EDI = flags index; EAX = 0x12345600 | (AH) | AL
%macro BCDLOOP 1 ; AH value
  %push bcd
  xor esi, esi
%$li:
  xor edi, edi
%$lj:
  mov eax, [cs:bcd_flags + edi*4]
  mov [ss:V_TMP], eax
  mov eax, 0x12340000 | ((%1) << 8)
  or eax, esi
  mov edx, eax
  push dword [ss:V_TMP]
  popfd
%endmacro
%macro ENDBCD 0
  inc edi
  cmp edi, bcd_flags_N
  jb %$lj
  inc esi
  cmp esi, 256
  jb %$li
  %pop
%endmacro

%macro BODY 0
  BCDLOOP 0x00
    daa
    DUMP "daa", M_NOOF
    mov eax, edx
    push dword [ss:V_TMP]
    popfd
    das
    DUMP "das", M_NOOF
  ENDBCD
  BCDLOOP 0xFF
    aaa
    DUMP "aaa", M_ALL & ~(F_OF|F_SF|F_ZF|F_PF)
    mov eax, edx
    push dword [ss:V_TMP]
    popfd
    aas
    DUMP "aas", M_ALL & ~(F_OF|F_SF|F_ZF|F_PF)
  ENDBCD
  BCDLOOP 0x7F
    cmp edi, 1
    ja %%skip1          ; flags-in matter little here: two of six
    aam
    DUMP "aam", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    aam 16
    DUMP "aam 16", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    aam 7
    DUMP "aam 7", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    aam 0xFF
    DUMP "aam 255", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    aad
    DUMP "aad", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    aad 16
    DUMP "aad 16", M_ALL & ~(F_OF|F_AF|F_CF)
    mov eax, edx
    xor ah, 0xFF
    aad 0xFF
    DUMP "aad 255", M_ALL & ~(F_OF|F_AF|F_CF)
%%skip1:
  ENDBCD
  mov eax, 0x1234
  EXPECT %%z
  aam 0
  mov dword [ss:V_CONT], 0
%%z:
  DUMP "aam 0"
  mov eax, 0x1234
  aad 0
  DUMP "aad 0", M_ALL & ~(F_OF|F_AF|F_CF)
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

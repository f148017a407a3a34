; MOVS CMPS SCAS LODS STOS (byte/word/dword) with and without REP/REPE/REPNE,
; DF=0 and DF=1, 16- and 32-bit address size (incl. SI/DI wrap-around at 64K
; with a16 and ECX upper half ignored), segment overrides on the source.
; Source: DS:0x100.. holds (i ^ 0x5A); destination ES=scratch2, 0x1F0..0x22F
; is refilled with 0xCC before every case and dumped after it (as are the
; 16 bytes either side of ES:0 for the wrap-around cases).  No access
; straddles the 64K limit: QEMU does not check segment limits, real CPUs do.
%include "lib/harness.inc"
TEST_BEGIN

%macro RESET_DST 0
  SETSEG es, SCR2
  mov edi, 0x1F0
  mov eax, 0xCCCCCCCC
  mov ecx, 0x10
  a32 rep stosd
  mov edi, 0xFFF0            ; area around the a16 wrap point too
  mov ecx, 4
  a32 rep stosd
  mov edi, 0
  mov ecx, 4
  a32 rep stosd
%endmacro

; SCASE "label", esi, edi, ecx, df, instruction
%macro SCASE 6
  RESET_DST
  mov esi, %2
  mov edi, %3
  mov ecx, %4
  mov eax, 0x8A5B5C5D
  mov ebx, 0
  mov edx, 0
  SETFLAGS 0x002 | ((%5) << 10)
  %6
  DUMP %1
  cld
  DUMPMEM %1, SCRATCH2 + 0x1F0, 0x40
  DUMPMEM %1, SCRATCH2 + 0xFFF0, 0x10
  DUMPMEM %1, SCRATCH2, 0x10
%endmacro

; OVL "label", esi, edi, ecx, df, instruction: DS:0x100..0x17F gets a fresh
; pattern, then the instruction runs with DS == ES
%macro OVL 6
  xor ecx, ecx
%%f:
  mov eax, ecx
  imul eax, eax, 0x1D
  xor al, 0xC3
  mov [ecx+0x100], al
  inc ecx
  cmp ecx, 0x80
  jb %%f
  mov esi, %2
  mov edi, %3
  mov ecx, %4
  SETFLAGS 0x002 | ((%5) << 10)
  %6
  DUMP %1
  cld
  DUMPMEM %1, SCRATCH + 0x100, 0x80
%endmacro

%macro BODY 0
  ; source pattern
  SETSEG ds, SCR
  xor esi, esi
%%fill:
  mov eax, esi
  xor al, 0x5A
  mov [esi+0x100], al
  mov [esi+0x0], al
  inc esi
  cmp esi, 0x100
  jb %%fill
  mov dword [0xFFFC], 0x44332211   ; bytes at the 64K edge of DS
  SETSEG fs, SCR2
  SETSEG gs, SCR

  SCASE "movsb", 0x100, 0x200, 0, 0, movsb
  SCASE "movsw", 0x100, 0x200, 0, 0, movsw
  SCASE "movsd", 0x100, 0x200, 0, 0, movsd
  SCASE "movsb std", 0x100, 0x200, 0, 1, movsb
  SCASE "movsd std", 0x100, 0x200, 0, 1, movsd
  SCASE "rep movsb 0", 0x100, 0x200, 0, 0, rep movsb
  SCASE "rep movsb 1", 0x100, 0x200, 1, 0, rep movsb
  SCASE "rep movsb 13", 0x101, 0x203, 13, 0, rep movsb
  SCASE "rep movsw 7", 0x101, 0x200, 7, 0, rep movsw
  SCASE "rep movsd 5", 0x100, 0x201, 5, 0, rep movsd
  SCASE "rep movsb 9 std", 0x110, 0x210, 9, 1, rep movsb
  SCASE "rep movsw 5 std", 0x110, 0x210, 5, 1, rep movsw
  SCASE "rep movsd 4 std", 0x110, 0x210, 4, 1, rep movsd
  SCASE "a16 rep movsb cx", 0x100, 0x200, 0xFFFF0003, 0, a16 rep movsb
  SCASE "a32 rep movsb ecx", 0x100, 0x200, 3, 0, a32 rep movsb
  SCASE "a16 movsw wrap", 0xFFFC, 0xFFFA, 4, 0, a16 rep movsw
  SCASE "a16 movsd wrap std", 0x0004, 0x0000, 3, 1, a16 rep movsd
  SCASE "fs: rep movsb", 0x200, 0x1F8, 6, 0, fs rep movsb
  SCASE "gs: movsd", 0x104, 0x1F4, 0, 0, gs movsd
  SCASE "es: rep movsw", 0x1F0, 0x210, 4, 0, es rep movsw

  SCASE "stosb", 0, 0x1F3, 0, 0, stosb
  SCASE "rep stosw 5", 0, 0x1F3, 5, 0, rep stosw
  SCASE "rep stosd 3 std", 0, 0x220, 3, 1, rep stosd
  SCASE "a16 rep stosb wrap", 0, 0xFFFE, 4, 0, a16 rep stosb
  SCASE "lodsb", 0x105, 0, 0, 0, lodsb
  SCASE "lodsw std", 0x105, 0, 0, 1, lodsw
  SCASE "lodsd", 0x105, 0, 0, 0, lodsd
  SCASE "rep lodsb 4", 0x105, 0, 4, 0, rep lodsb
  SCASE "fs: lodsd", 0x1F0, 0, 0, 0, fs lodsd

  ; compares: DS:0x100.. vs ES(scratch2):0x1F0.. (0xCC) / DS vs DS copy
  SCASE "cmpsb", 0x100, 0x1F0, 0, 0, cmpsb
  SCASE "cmpsd", 0x100, 0x1F0, 0, 0, cmpsd
  SCASE "es: cmpsw", 0x100, 0x000, 0, 0, es cmpsw
  SCASE "repe cmpsb ds=ds", 0x100, 0x000, 20, 0, gs repe cmpsb
  SCASE "repe cmpsb 0", 0x100, 0x000, 0, 0, repe cmpsb
  SCASE "repne cmpsb", 0x100, 0x1F0, 7, 0, repne cmpsb
  SCASE "repne cmpsw std", 0x120, 0x200, 7, 1, repne cmpsw
  SCASE "scasb", 0, 0x1F0, 0, 0, scasb
  SCASE "repne scasb miss", 0, 0x1F0, 10, 0, repne scasb
  SCASE "repe scasb", 0, 0x1F0, 10, 0, repe scasb
  SCASE "repe scasd std", 0, 0x21C, 5, 1, repe scasd
  SCASE "a16 repne scasw wrap", 0, 0xFFFC, 6, 0, a16 repne scasw

  ; overlapping source and destination in one segment (DS == ES): element by
  ; element semantics (a fast memcpy/memmove path gets these wrong)
  SETSEG es, SCR
  OVL "ovl movsb +1", 0x120, 0x121, 0x20, 0, rep movsb
  OVL "ovl movsb +3", 0x120, 0x123, 0x20, 0, rep movsb
  OVL "ovl movsb -1", 0x121, 0x120, 0x20, 0, rep movsb
  OVL "ovl movsw +1", 0x120, 0x121, 0x10, 0, rep movsw
  OVL "ovl movsw +2", 0x120, 0x122, 0x10, 0, rep movsw
  OVL "ovl movsd +1", 0x120, 0x121, 0x08, 0, rep movsd
  OVL "ovl movsd +3", 0x120, 0x123, 0x08, 0, rep movsd
  OVL "ovl movsd +4", 0x120, 0x124, 0x08, 0, rep movsd
  OVL "ovl movsd -2", 0x122, 0x120, 0x08, 0, rep movsd
  OVL "ovl movsb std -1", 0x13F, 0x13E, 0x20, 1, rep movsb
  OVL "ovl movsb std +1", 0x13E, 0x13F, 0x20, 1, rep movsb
  OVL "ovl movsd std +2", 0x13C, 0x13E, 0x08, 1, rep movsd
  OVL "ovl movsw std -1", 0x13E, 0x13D, 0x10, 1, rep movsw

  ; repne scas that finds a byte: look for 0x5A^0x07 in the pattern (DS==ES)
  SETSEG es, SCR
  mov edi, 0x100
  mov ecx, 0x40
  mov eax, 0x5A ^ 0x07
  SETFLAGS 0x002
  repne scasb
  DUMP "repne scasb hit"
  ; repe cmpsd that stops on a difference
  mov byte [0x0C], 0x99
  mov esi, 0x0
  mov edi, 0x100
  mov ecx, 0x10
  repe cmpsd
  DUMP "repe cmpsd stop"
  mov esi, 0x0
  mov edi, 0x100
  mov ecx, 0x10
  repne cmpsw
  DUMP "repne cmpsw"
  mov al, 0x0C ^ 0x5A
  mov [0x0C], al
  SETSEG ds, SCR
  SETSEG es, SCR
  SETSEG fs, SCR
  SETSEG gs, SCR
%endmacro

ALL_MODES BODY
TEST_END

; Addressing forms and their default segments: every 16-bit ModRM form and
; the 32-bit ModRM/SIB forms (incl. ESP/EBP bases, EBP as index, no-base
; SIB with disp32, scales), with and without segment overrides.  SS has base
; 0 and DS base 0x10000, and the two areas hold different patterns, so the
; value read shows which segment and offset were used.  16-bit offset
; wrap-around (BX+SI+disp > 0xFFFF) is included.
%include "lib/harness.inc"
TEST_BEGIN

AREA equ 0x6000          ; offset used in both segments

%macro LD 2  ; label, memory operand
  mov eax, %2
  DUMP %1
%endmacro

%macro BODY 0
  ; SS:AREA.. = i ^ 0x55 (linear 0x6000), DS:AREA.. = i ^ 0xAA (linear 0x16000)
  xor esi, esi
%%fill:
  mov eax, esi
  xor al, 0x55
  mov [ss:esi + AREA], al
  xor al, 0x55 ^ 0xAA
  mov [esi + AREA], al
  inc esi
  cmp esi, 0x100
  jb %%fill
  mov ebx, AREA + 0x10
  mov esi, 0x04
  mov edi, 0x08
  mov ebp, AREA + 0x20
  ; 16-bit forms
  LD "a16 [bx+si]", [bx+si]
  LD "a16 [bx+di]", [bx+di]
  LD "a16 [bp+si]", [bp+si]
  LD "a16 [bp+di]", [bp+di]
  LD "a16 [si+d16]", [si+AREA]
  LD "a16 [di+d8]", [di-4+AREA]
  LD "a16 [bp+0]", [bp]
  LD "a16 [bp+d8]", [bp+0x30]
  LD "a16 [bp+d16]", [bp+0x1234-0x1204]
  LD "a16 [bx]", [bx]
  LD "a16 [d16]", [word AREA+0x40]
  LD "a16 [bx+si+d8]", [bx+si+0x7F]
  LD "a16 [bp+di-d8]", [bp+di-0x80+0x90]
  LD "a16 ds:[bp]", [ds:bp]
  LD "a16 ss:[bx]", [ss:bx]
  LD "a16 es:[bp+si]", [es:bp+si]
  ; 16-bit wrap: BX+SI+disp = 0x1FFF0 -> 0xFFF0 ... use 0xFFFF+1 = 0
  push ebx
  push esi
  mov ebx, 0xFFF0
  mov esi, 0x0010
  LD "a16 wrap", [bx+si+AREA]
  mov ebx, 0xFFFF
  mov esi, 0x0001
  LD "a16 wrap bp", [ds:bx+si+AREA+0x08]
  pop esi
  pop ebx
  ; 32-bit forms
  mov eax, AREA + 0x04
  mov ecx, 0x02
  mov edx, AREA + 0x60
  LD "a32 [eax]", [eax]
  mov eax, AREA + 0x04
  LD "a32 [ecx*4+d32]", [ecx*4+AREA]
  LD "a32 [edx]", [edx]
  LD "a32 [ebx]", [ebx]
  LD "a32 [ebp]", [ebp]
  LD "a32 [ebp+d8]", [ebp+0x10]
  LD "a32 [ebp+d32]", [ebp+0x100-0xF0]
  LD "a32 [esi+d32]", [esi+AREA]
  LD "a32 [edi+d8]", [edi+AREA]
  LD "a32 [d32]", [dword AREA+0x44]
  LD "a32 [ebx+ecx*2]", [ebx+ecx*2]
  LD "a32 [ebp+ecx*8]", [ebp+ecx*8]
  LD "a32 [ecx+ebp]", [ecx+ebp*1]
  LD "a32 [ebp+ecx]", [ebp+ecx*1]
  LD "a32 [ebp*2+d32] no base", [nosplit ebp*2-AREA-0x20+0x08]
  LD "a32 [ebp+ebp]", [ebp+ebp*1-AREA-0x20]
  LD "a32 ds:[ebp]", [ds:ebp]
  LD "a32 fs:[ebp+ecx*4]", [fs:ebp+ecx*4]
  LD "a32 ss:[ebx]", [ss:ebx]
  ; ESP-based
  push ebp
  mov ebp, esp
  mov esp, AREA + 0x80
  mov eax, [esp]
  mov ecx, [esp+0x08]
  mov edx, [esp+ecx*0+0x0C]
  mov esi, [ds:esp+4]
  mov edi, [esp+esi*0+0x10]
  mov esp, ebp
  pop ebp
  DUMP "a32 esp forms"
%endmacro

ALL_MODES BODY
TEST_END

; Flag consumers right after flag producers: SETcc and Jcc for all 16
; conditions (and ADC, LAHF) directly after ADD/SUB/ADC/SBB/CMP/NEG/AND/OR/
; XOR/TEST/INC/DEC/SHL/SHR/SAR/ROL/RCR/IMUL/BT in 8/16/32-bit forms, so that a
; lazy-flags engine is checked on its condition fast paths, including the
; flags an instruction leaves alone (INC keeps CF, ROL/RCR keep SF ZF PF, BT
; keeps ZF: those come from the ADD/SUB just before).  Only conditions on
; defined flags are recorded (after IMUL: O/NO/B/AE; after BT: B/AE/E/NE).
%include "lib/harness.inc"
TEST_BEGIN

RES equ 0x40

; SC cc, index: byte [RES+index] := cc (SETcc), byte [RES+16+index] := taken (Jcc)
%macro SC 2
  set%1 [RES + %2]
  j%1 %%t
  jmp %%n
%%t:
  mov byte [RES + 16 + %2], 1
%%n:
%endmacro

%macro CLEARRES 0
  mov dword [RES], 0
  mov dword [RES + 4], 0
  mov dword [RES + 8], 0
  mov dword [RES + 12], 0
  mov dword [RES + 16], 0
  mov dword [RES + 20], 0
  mov dword [RES + 24], 0
  mov dword [RES + 28], 0
%endmacro

%macro ALLCC 0
  SC o, 0
  SC no, 1
  SC b, 2
  SC ae, 3
  SC e, 4
  SC ne, 5
  SC be, 6
  SC a, 7
  SC s, 8
  SC ns, 9
  SC p, 10
  SC np, 11
  SC l, 12
  SC ge, 13
  SC le, 14
  SC g, 15
%endmacro

; P label, setup-and-producer... (EAX=a, EBX=b from PAIRS; results to memory)
%macro P 2+
  CLEARRES
  mov eax, edx
  mov ebx, [cs:%$tbl2 + edi*4]
  %2
  ALLCC
  mov ecx, 0
  adc ecx, ecx                 ; CF as a value
  DUMPMEM %1, SCRATCH + RES, 32
%endmacro

%macro P2 3   ; label, {first}, {second}: the second right after the first
  CLEARRES
  mov eax, edx
  mov ebx, [cs:%$tbl2 + edi*4]
  %2
  %3
  ALLCC
  mov ecx, 0
  adc ecx, ecx
  DUMPMEM %1, SCRATCH + RES, 32
%endmacro

%macro PCF 2+   ; only CF/OF defined (IMUL)
  CLEARRES
  mov eax, edx
  mov ebx, [cs:%$tbl2 + edi*4]
  %2
  SC o, 0
  SC no, 1
  SC b, 2
  SC ae, 3
  DUMPMEM %1, SCRATCH + RES, 32
%endmacro

%macro PBT 3   ; CF from BT, ZF from the instruction before
  CLEARRES
  mov eax, edx
  mov ebx, [cs:%$tbl2 + edi*4]
  %2
  %3
  SC b, 2
  SC ae, 3
  SC e, 4
  SC ne, 5
  DUMPMEM %1, SCRATCH + RES, 32
%endmacro

%macro BODY 0
  PAIRS vals32s, 0
    P "add32", add eax, ebx
    P "sub32", sub eax, ebx
    P "cmp32", cmp eax, ebx
    P "adc32", adc eax, ebx
    P "sbb32", sbb eax, ebx
    P "and32", and eax, ebx
    P "or32", or eax, ebx
    P "xor32", xor eax, ebx
    P "test32", test eax, ebx
    P "neg32", neg eax
    P2 "inc32 after add", {add eax, ebx}, {inc eax}
    P2 "dec32 after sub", {sub eax, ebx}, {dec eax}
    P2 "inc32 after shl", {shl eax, 1}, {inc eax}
    P "shl32,1", shl eax, 1
    P "shr32,1", shr eax, 1
    P "sar32,1", sar eax, 1
    P2 "rol32,1 after sub", {sub eax, ebx}, {rol eax, 1}
    P2 "rcr32,1 after add", {add eax, ebx}, {rcr eax, 1}
    P2 "rol32,1 after and", {and eax, ebx}, {rol eax, 1}
    PCF "imul32", imul eax, ebx
    PBT "bt after sub", {sub eax, ebx}, {bt eax, ebx}
  ENDPAIRS
  PAIRS vals16, 0
    P "add16", add ax, bx
    P "sub16", sub ax, bx
    P "cmp16", cmp ax, bx
    P "sbb16", sbb ax, bx
    P "neg16", neg ax
    P2 "inc16 after sub", {sub ax, bx}, {inc ax}
    P "sar16,1", sar ax, 1
  ENDPAIRS
  PAIRS vals8, 0
    P "add8", add al, bl
    P "sub8", sub al, bl
    P "cmp8", cmp al, bl
    P "adc8", adc al, bl
    P2 "dec8 after add", {add al, bl}, {dec al}
    P "shl8,1", shl al, 1
    P "xor8", xor al, bl
  ENDPAIRS
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

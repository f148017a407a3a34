; Register aliasing: instructions with two outputs or read-after-write order
; given the same or overlapping registers as operands (XADD/XCHG/CMPXCHG on
; the same register or on AL/AH, MUL/DIV by AH/EDX, shifts of CL by CL,
; BT/BSF/SHLD with source = destination, LEA/MOVZX/MOVSX of a register into
; itself, XCHG with ESP), over a table of operand values.
%include "lib/harness.inc"
TEST_BEGIN

; EAX = a, EDX = b, ECX = EBX = b (a = vals32[esi], b = vals32[edi]), flags fixed
%macro RELOAD 0
  mov eax, [cs:vals32s + edi*4]
  mov edx, eax
  mov ecx, eax
  mov ebx, eax
  mov eax, [cs:vals32s + esi*4]
  SETFLAGS 0x8D7
%endmacro

%define MM M_ONLYCF_OF
%define MD M_NOARITH

; one operand value in EAX/ECX/EDX/EBX (and a second, derived one)
%macro BODY 0
  PAIRS vals32s, 0
    RELOAD
    xadd eax, eax
    xadd cx, cx
    xadd dl, dl
    DUMP "xadd same"
    RELOAD
    xadd al, ah
    xadd ch, cl
    DUMP "xadd al,ah / ch,cl"
    RELOAD
    xchg al, ah
    xchg cx, cx
    xchg ch, cl
    DUMP "xchg overlapping"
    RELOAD
    cmpxchg eax, eax
    DUMP "cmpxchg eax,eax"
    RELOAD
    cmpxchg ah, al
    DUMP "cmpxchg ah,al"
    RELOAD
    cmpxchg al, ah
    DUMP "cmpxchg al,ah"
    RELOAD
    cmpxchg cl, al
    DUMP "cmpxchg cl,al"
    RELOAD
    mul ah
    DUMP "mul ah", MM
    RELOAD
    imul al
    DUMP "imul al", MM
    RELOAD
    mul edx
    DUMP "mul edx", MM
    RELOAD
    imul eax, eax
    imul edx, edx, 3
    DUMP "imul r,r same", MM
    RELOAD
    imul eax
    DUMP "imul eax", MM
    RELOAD
    or ah, 1
    EXPECT %%d1, MD
    div ah
    mov dword [ss:V_CONT], 0
%%d1:
    DUMP "div ah", MD
    RELOAD
    or al, 0x80
    EXPECT %%d2, MD
    idiv al
    mov dword [ss:V_CONT], 0
%%d2:
    DUMP "idiv al", MD
    RELOAD
    or edx, 0x80000000
    EXPECT %%d3, MD
    div edx
    mov dword [ss:V_CONT], 0
%%d3:
    DUMP "div edx", MD
    RELOAD
    rol cl, cl
    DUMP "rol cl,cl", M_ALL & ~F_OF
    RELOAD
    shl ecx, cl
    DUMP "shl ecx,cl", M_ALL & ~(F_OF | F_AF | F_CF)
    RELOAD
    sar cx, cl
    DUMP "sar cx,cl", M_ALL & ~(F_OF | F_AF)
    RELOAD
    shld ecx, ecx, cl
    DUMP "shld ecx,ecx,cl", M_ALL & ~(F_OF | F_AF)
    RELOAD
    shrd ax, ax, 5
    DUMP "shrd ax,ax,5", M_ALL & ~(F_OF | F_AF)
    RELOAD
    bt eax, eax
    DUMP "bt eax,eax", M_ALL & ~(F_OF | F_SF | F_AF | F_PF)
    RELOAD
    btc ax, ax
    DUMP "btc ax,ax", M_ALL & ~(F_OF | F_SF | F_AF | F_PF)
    RELOAD
    bts eax, eax
    DUMP "bts eax,eax", M_ALL & ~(F_OF | F_SF | F_AF | F_PF)
    RELOAD
    bsf eax, eax
    mov ecx, [cs:vals32s + esi*4]
    bsr cx, cx
    DUMP "bsf/bsr same", M_ALL & ~(F_CF | F_OF | F_SF | F_AF | F_PF)
    RELOAD
    lea eax, [eax+eax*4+1]
    mov ecx, [cs:vals32s + esi*4]
    movsx ecx, cl
    mov edx, [cs:vals32s + esi*4]
    movzx dx, dh
    DUMP "lea/movsx/movzx same"
    RELOAD
    mov ebx, 0x100
    xlatb
    DUMP "xlat"
  ENDPAIRS
  ; XCHG with ESP
  mov eax, 0x8800
  xchg eax, esp
  xchg esp, eax
  mov ecx, esp
  DUMP "xchg esp"
%endmacro

BODY
ENTER_PM32
BODY
TEST_END

; x87 instructions and FXSAVE/FXRSTOR in compiled regions against the
; interpreter (test/jit/wasm-tier.test.ts): regions hand them to the CPU's
; FPU through an import (src/jit/fpu-call.ts) instead of leaving for each.
; A loop on a RAM page with paging on runs loads, stores and arithmetic of
; every operand size (m16/m32/m64/m80 integer, real and BCD), register
; forms, FNSTENV/FLDENV, FNSAVE/FRSTOR, FXSAVE/FXRSTOR, FNSTSW AX and FCOMI
; (whose AX and EFLAGS the region takes back from the import), and FCMOVcc,
; which stays the interpreter's. Now and then, the cases where the import
; must send the instruction back to the interpreter or leave after it:
;  - CR0.TS set: #NM at the next x87 instruction (the handler clears TS);
;  - an unmasked divide by zero: #MF at the next waiting instruction (CR0.NE;
;    the handler clears the exception);
;  - a store to a page that is not present: #PF (the handler maps it);
;  - FIST into the immediate of an instruction a few bytes on, on the
;    running region's page: the region leaves, the new immediate is used;
;  - an FS override with a non-zero FS base.
; The handlers log each exception's vector and EIP. The test compares
; registers after every slice and RAM at the end.
ROMSEG  equ 0xf000
PD      equ 0x100000
PT      equ 0x101000
IDT     equ 0x102000
RESULTS equ 0x200000
LOG     equ 0x210000
LOGPTR  equ 0x20fff0
DATA    equ 0x220000
RAMCODE equ 0x300000
NPPAGE  equ 0x380000            ; a page made not present now and then
FSBASE  equ 0x230000            ; FS's base (selector 0x18)
%ifndef ITER
%define ITER 6000
%endif

section .text start=0 vstart=0
bits 16
start16:
    cli
    lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(ROMSEG*16 + pm32)
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov gs, ax
    mov ax, 0x18
    mov fs, ax
    mov esp, 0x90000
    cld
    mov esi, ROMSEG*16 + 0x4000
    mov edi, RAMCODE
    mov ecx, ram_end - ram_start
    rep movsb
    ; identity map of the first 4 MiB
    mov edi, PD
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [PD], PT | 7
    mov edi, PT
    mov eax, 7
    mov ecx, 1024
.pt:
    stosd
    add eax, 4096
    loop .pt
    ; #NM, #PF, #MF to their handlers, every other vector to `other`
    mov edi, IDT
    xor ecx, ecx
.idt:
    mov eax, ROMSEG*16 + other
    cmp ecx, 7
    jne .n7
    mov eax, ROMSEG*16 + h_nm
.n7:
    cmp ecx, 14
    jne .n14
    mov eax, ROMSEG*16 + h_pf
.n14:
    cmp ecx, 16
    jne .n16
    mov eax, ROMSEG*16 + h_mf
.n16:
    mov [edi], ax
    mov word [edi+2], 0x08
    mov word [edi+4], 0x8e00
    shr eax, 16
    mov [edi+6], ax
    add edi, 8
    inc ecx
    cmp ecx, 32
    jb .idt
    lidt [ROMSEG*16 + idtr]
    mov dword [LOGPTR], LOG
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000020          ; PG, NE (#MF, not IRQ 13)
    and eax, ~0xc               ; EM, TS off
    mov cr0, eax
    mov eax, main
    jmp eax

; #NM: clear TS and run the instruction again
h_nm:
    push eax
    mov eax, 7
    call log
    clts
    pop eax
    iret
; #PF: map NPPAGE again (the only page ever made not present) and run the instruction again
h_pf:
    push eax
    mov eax, 14
    call log
    or dword [PT + (NPPAGE >> 12) * 4], 1
    invlpg [NPPAGE]
    pop eax
    add esp, 4                  ; the error code
    iret
; #MF: clear the exception, mask it again, and run the waiting instruction again
h_mf:
    push eax
    mov eax, 16
    call log
    fnclex
    fldcw [ROMSEG*16 + cw_masked]
    pop eax
    iret
other:
    hlt
    jmp other
; log EAX (the vector) and the two dwords atop the exception's frame (EIP and
; CS, or the error code and EIP), above the saved EAX and the return address
log:
    push edi
    mov edi, [LOGPTR]
    mov [edi], eax
    mov eax, [esp + 12]
    mov [edi + 4], eax
    mov eax, [esp + 16]
    mov [edi + 8], eax
    add edi, 12
    mov [LOGPTR], edi
    pop edi
    ret

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff       ; 0x08 flat code
        dq 0x00cf92000000ffff       ; 0x10 flat data
        dq 0x00cf92230000ffff       ; 0x18 data based at FSBASE (0x230000)
gdtr:   dw 31
        dd ROMSEG*16 + gdt
idtr:   dw 32*8 - 1
        dd IDT
cw_masked: dw 0x037f
cw_zm:     dw 0x037b                ; divide by zero unmasked

section .ram start=0x4000 vstart=0x300000
ram_start:
main:
    mov ebp, ITER
    xor ebx, ebx
    mov esi, RESULTS
    finit
    mov dword [DATA + 0], 0x40490fdb      ; 3.14159274 (m32)
    mov dword [DATA + 4], 0x54442d18      ; pi (m64)
    mov dword [DATA + 8], 0x400921fb
    mov dword [DATA + 12], 0x3ff00000     ; 1.0 high dword (with DATA+8 as low: a denormal-free m64)
    mov dword [DATA + 16], 123456789      ; m64 integer
    mov dword [DATA + 20], 0
    mov dword [FSBASE + 0], 0x3fc00000    ; 1.5 (m32), read through FS
.loop:
    mov [DATA + 24], ebp
    mov eax, ebp
    imul eax, eax, 2654435761
    mov [DATA + 28], eax
    ; loads, arithmetic on the stack and with memory operands
    fild dword [DATA + 24]      ; DB /0
    fld qword [DATA + 4]        ; DD /0
    fmul st0, st1               ; D8 C9
    fadd dword [DATA + 0]       ; D8 /0
    fld1
    fdivrp st1, st0             ; DE F1
    fsqrt
    fld st0
    fxch st2
    fsubp st1, st0
    fabs
    fchs
    fmul qword [DATA + 4]       ; DC /1
    fdiv dword [DATA + 0]       ; D8 /6
    fiadd word [DATA + 24]      ; DE /0
    fimul dword [DATA + 28]     ; DA /1
    frndint
    fscale
    fprem
    fxam
    fld dword [fs:0]            ; FS override, non-zero base
    fmulp st1, st0
    ; stores of every size
    fist dword [esi]            ; DB /2
    fst qword [esi + 4]         ; DD /2
    fld st0
    fstp tword [esi + 12]       ; DB /7
    fld st0
    fbstp [esi + 22]            ; DF /6
    fbld [esi + 22]             ; DF /4
    fistp qword [esi + 32]      ; DF /7
    fild qword [DATA + 16]      ; DF /5
    faddp st1, st0
    fist word [esi + 40]        ; DF /2
    fstp dword [esi + 42]       ; D9 /3
    ; compares: FCOM and FNSTSW AX read back by SAHF
    fld dword [DATA + 0]
    fcom qword [DATA + 4]
    fnstsw ax
    sahf
    jb .below
    inc ebx
.below:
    fild dword [DATA + 28]
    fcomi st0, st1              ; EFLAGS from the import
    fcmovb st0, st1             ; the interpreter's (reads EFLAGS)
    adc ebx, 0
    fucomp st1
    fstp st0
    ; environment and state images
    fnstcw [esi + 46]
    fnstsw [esi + 48]
    fnstenv [esi + 52]          ; 28 bytes
    fldenv [esi + 52]
    fld qword [DATA + 4]
    fnsave [DATA + 0x100]       ; 108 bytes, and FNINIT
    frstor [DATA + 0x100]
    fxsave [DATA + 0x200]       ; 512-byte aligned image
    fxrstor [DATA + 0x200]
    fstp qword [esi + 80]
    ; now and then, the cases the import sends back to the interpreter
    test ebp, 63
    jnz .no_ts
    mov eax, cr0
    or eax, 8
    mov cr0, eax                ; TS: the next x87 instruction raises #NM
    fldz
    fstp st0
.no_ts:
    mov eax, ebp
    and eax, 63
    cmp eax, 21
    jne .no_mf
    fldcw [ROMSEG*16 + cw_zm]
    fld1
    fldz
    fdivp st1, st0              ; 1/0, unmasked: pending
    fld1                        ; waiting: #MF here, then again after the handler
    fstp st0
    fstp st0
.no_mf:
    mov eax, ebp
    and eax, 31
    cmp eax, 12
    jne .no_pf
    and dword [PT + (NPPAGE >> 12) * 4], ~1
    invlpg [NPPAGE]
    fld dword [DATA + 0]
    fstp dword [NPPAGE + 4*ebp] ; #PF, then done after the handler
    fld dword [NPPAGE + 4*ebp]
    fistp dword [esi + 88]
.no_pf:
    ; one iteration in 64 of the first 512, a store into this page, four
    ; bytes on: the region leaves after it (more often, and the page would be
    ; left to the lower tiers as one that keeps being rewritten: wasm-tier.ts
    ; REWRITE_LIMIT; the rest leaves the optimiser time to put its code in
    ; place)
    mov [DATA + 32], ebp
    test ebp, 63
    jnz .patch
    cmp ebp, ITER - 512
    jb .patch
    fild dword [DATA + 32]
    fistp dword [.patch + 1]
.patch:
    mov edx, 0
    add ebx, edx
    mov [esi + 92], ebx
    add esi, 96
    cmp esi, RESULTS + 96 * 64
    jb .nowrap
    mov esi, RESULTS
.nowrap:
    dec ebp
    jnz .loop
    fxsave [DATA + 0x400]
    mov [RESULTS + 0x10000], ebx
    hlt
    jmp $                       ; the region decoder goes on past HLT: not into the zeros behind
ram_end:

section .reset start=0xfff0 vstart=0xfff0
bits 16
    jmp ROMSEG:start16
    times 16 - ($ - $$) db 0

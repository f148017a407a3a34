; The wasm tier against the interpreter: integer forms the region compiler
; takes, every condition code straight after every flag producer (the fast
; paths), conditions read across a label (the generic path), CALL/RET,
; PUSH/POP, 8-bit registers, memory operands with DS/SS bases, and code that
; rewrites itself on its own page. The results land in RAM; the test compares
; RAM and registers between tiers.
bits 16
org 0
ROMSEG equ 0xf000
RESULTS equ 0x200000
CODE   equ 0x300000
%ifndef ITER
%define ITER 300
%endif

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
    mov ss, ax
    mov es, ax
    mov ax, 0x18            ; data segment with base 0x1000
    mov ds, ax
    mov fs, ax
    mov ax, 0x10
    mov gs, ax
    mov esp, 0x90000
    mov esi, RESULTS - 0x1000   ; DS-relative
    mov eax, 0x12345678
    mov ebp, ITER

.loop:
    ; next pair: eax = lcg(eax); ebx from a second generator, sometimes equal, negated or small
    imul eax, eax, 1103515245
    add eax, 12345
    mov ebx, eax
    imul ebx, ebx, 69069
    add ebx, 1
    mov ecx, ebp
    and ecx, 3
    jnz .n1
    mov ebx, eax            ; equal
.n1:
    cmp ecx, 1
    jne .n2
    and ebx, 0xff           ; small
.n2:
    cmp ecx, 2
    jne .n3
    mov ebx, eax
    xor ebx, 0x80000000     ; sign flipped
.n3:
    mov ecx, ebp
    and ecx, 7
    cmp ecx, 3
    jne .n4
    mov ebx, eax
    neg ebx                 ; a + b = 0
.n4:
    cmp ecx, 7
    jne .n5
    mov eax, 1              ; DEC to zero
.n5:
    cmp ecx, 5
    jne .n6
    or eax, -1              ; INC to zero
.n6:
    mov [esi], eax
    mov [esi+4], ebx
    add esi, 8

%macro ALLCC 1-2
    xor edi, edi
    mov edx, eax
    %1 %2
    jo %%c0
    lea edi, [edi+1]
%%c0:
    mov edx, eax
    %1 %2
    jno %%c1
    lea edi, [edi+2]
%%c1:
    mov edx, eax
    %1 %2
    jb %%c2
    lea edi, [edi+4]
%%c2:
    mov edx, eax
    %1 %2
    jae %%c3
    lea edi, [edi+8]
%%c3:
    mov edx, eax
    %1 %2
    je %%c4
    lea edi, [edi+16]
%%c4:
    mov edx, eax
    %1 %2
    jne %%c5
    lea edi, [edi+32]
%%c5:
    mov edx, eax
    %1 %2
    jbe %%c6
    lea edi, [edi+64]
%%c6:
    mov edx, eax
    %1 %2
    ja %%c7
    lea edi, [edi+128]
%%c7:
    mov edx, eax
    %1 %2
    js %%c8
    lea edi, [edi+256]
%%c8:
    mov edx, eax
    %1 %2
    jns %%c9
    lea edi, [edi+512]
%%c9:
    mov edx, eax
    %1 %2
    jp %%c10
    lea edi, [edi+1024]
%%c10:
    mov edx, eax
    %1 %2
    jnp %%c11
    lea edi, [edi+2048]
%%c11:
    mov edx, eax
    %1 %2
    jl %%c12
    lea edi, [edi+4096]
%%c12:
    mov edx, eax
    %1 %2
    jge %%c13
    lea edi, [edi+8192]
%%c13:
    mov edx, eax
    %1 %2
    jle %%c14
    lea edi, [edi+16384]
%%c14:
    mov edx, eax
    %1 %2
    jg %%c15
    lea edi, [edi+32768]
%%c15:
    mov [esi], edi
    mov [esi+4], edx
    add esi, 8
%endmacro

; a producer, then conditions read at a label (nothing known at compile time:
; ZF and SF come from the lazy state inline, the rest from the helpers)
%macro XLBL 1-2
    mov edx, eax
    %1 %2
    jmp %%l
%%l:
    setz cl
    sets ch
    mov [esi], cx
    mov edx, eax
    %1 %2
    jmp %%m
%%m:
    setl cl
    setle ch
    mov [esi+2], cx
    mov edx, eax
    %1 %2
    jmp %%n
%%n:
    setbe cl
    seto ch
    mov [esi+4], cx
    mov [esi+6], dx
    add esi, 8
%endmacro

    ALLCC cmp, {edx, ebx}
    ALLCC sub, {edx, ebx}
    ALLCC add, {edx, ebx}
    ALLCC and, {edx, ebx}
    ALLCC or, {edx, ebx}
    ALLCC xor, {edx, ebx}
    ALLCC test, {edx, ebx}
    ALLCC inc, edx
    ALLCC dec, edx
    ALLCC cmp, {dl, bl}
    ALLCC sub, {dh, bh}
    ALLCC add, {dl, 0x80}
    ALLCC cmp, {edx, 0x7fffffff}
    ALLCC shl, {edx, 1}
    ALLCC shl, {edx, 7}
    ALLCC shr, {edx, 1}
    ALLCC shr, {edx, 9}
    ALLCC sar, {edx, 1}
    ALLCC sar, {edx, 31}
    ALLCC imul, {edx, ebx}
    ALLCC imul, {edx, edx, 3}
    ALLCC adc, {edx, ebx}
    ALLCC sbb, {edx, ebx}
    ALLCC cmp, {edx, [esi-8]}
    ALLCC neg, edx
    ALLCC test, {edx, 0x00ff00ff}
    ALLCC test, {dl, 0x81}
    ALLCC neg, byte [esi-8]
    ALLCC not, dword [esi-4]
    ; 16-bit and more 8-bit producers (the fast paths at every width)
    ALLCC cmp, {dx, bx}
    ALLCC add, {dx, bx}
    ALLCC sub, {dx, 0x8000}
    ALLCC and, {dl, bl}
    ALLCC xor, {dx, bx}
    ALLCC or, {dh, 0x80}
    ALLCC inc, dl
    ALLCC dec, dl
    ALLCC inc, dx
    ALLCC dec, dx
    ALLCC neg, dx
    ALLCC cmp, {dl, [esi-8]}
    ALLCC cmp, {word [esi-6], dx}
    ALLCC add, {byte [esi-5], dl}
    ALLCC test, {dx, bx}
    XLBL cmp, {dl, bl}
    XLBL sub, {edx, ebx}
    XLBL add, {dx, bx}
    XLBL inc, dl
    XLBL dec, edx
    XLBL and, {dx, bx}
    XLBL shl, {edx, 1}
    XLBL sar, {dl, 1}
    XLBL imul, {edx, ebx}

    ; segment-override prefixes: FS is the DS-like segment (base 0x1000), GS
    ; and ES flat; the addresses below name the same bytes
    mov ecx, [fs:esi-8]
    add ecx, [gs:esi-8+0x1000]
    xor [es:esi-4+0x1000], ecx
    mov edx, [ds:esi-4]
    sub edx, [ss:esi-8+0x1000]
    mov [fs:esi], ecx
    mov [gs:esi+4+0x1000], edx
    add esi, 8

    ; SETcc and CMOVcc after a compare, every condition
%assign cc 0
%rep 16
    cmp eax, ebx
    db 0x0f, 0x90 + cc, 0xc1        ; setcc cl
    cmp ebx, eax
    db 0x0f, 0x90 + cc, 0x46, 0x00  ; setcc [esi]
    mov edx, ebp
    cmp eax, ebx
    db 0x0f, 0x40 + cc, 0xd3        ; cmovcc edx, ebx
    mov [esi+1], cl
    mov [esi+4], edx
    add esi, 8
%assign cc cc + 1
%endrep
    ALLCC add, {[esi-4], edx}

    ; a condition read across a label (the region's generic flag path)
    cmp eax, ebx
    jmp .lbl
.lbl:
    seta cl                 ; not compiled: the interpreter reads the flags the region left
    jb .lb1
    inc cl
.lb1:
    mov [esi], cl
    ; memory forms, 8-bit registers, movzx/movsx, push/pop, call/ret
    mov [esi+4], eax
    add byte [esi+5], bl
    movzx ecx, byte [esi+5]
    movsx edx, word [esi+4]
    mov ah, bl
    mov [esi+8], ah
    push eax
    push ebx
    call fn
    pop ebx
    pop ecx
    mov [esi+12], ecx
    lea ecx, [esi+eax*2+7]
    mov [esi+16], ecx
    cdq
    mov [esi+20], edx
    add esi, 24

    ; self-modifying code on a RAM page: patch the immediate and run it again
    mov edi, CODE
    mov ecx, smc_end - smc_start
    push esi
    mov esi, ROMSEG*16 + smc_start - 0x1000
    rep movsb
    pop esi
    mov ecx, CODE           ; (a relative CALL would be assembled against the ROM's own origin)
    call ecx
    mov [esi], eax
    mov byte [es:CODE + smc_imm - smc_start], bl
    mov ecx, CODE
    call ecx
    mov [esi+4], eax
    add esi, 8

    dec ebp
    jnz .loop

    mov [es:RESULTS - 4], esi
    mov al, 0
    cli
    hlt

fn:
    mov eax, [esp+4]
    add eax, [esp+8]
    xor eax, 0x5a5a5a5a
    ret

smc_start:
    mov eax, 0
    add al, 0x11
smc_imm equ $ - 1
    ; a store into the page this code runs from, then code after it on the same page
    mov byte [es:CODE + 0x800], al
    add eax, [es:CODE + 0x800]
    ret
smc_end:

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff       ; 0x08 flat code
        dq 0x00cf92000000ffff       ; 0x10 flat data
        dq 0x00cf92001000ffff       ; 0x18 data, base 0x1000, limit 4 GiB
gdtr:   dw 31
        dd ROMSEG*16 + gdt

times 0xfff0 - ($ - $$) db 0
bits 16
    jmp ROMSEG:start16
times 0x10000 - ($ - $$) db 0

; The wasm tier against the interpreter (test/jit/wasm-tier.test.ts): every
; instruction form the region compiler takes beyond conds.asm, in a loop over
; pseudo-random operands: 16-bit operand size, LOCK, string instructions
; (REP MOVS/STOS/LODS in chunks across pages, forwards and backwards), XCHG,
; shifts and rotates of every kind, MUL/DIV, bit instructions, XADD,
; CMPXCHG, PUSH/POP forms, LEAVE, indirect CALL/JMP, flag instructions. The
; flags after each form are saved with LAHF/SETO, so a wrong flag shows in RAM
; as well as in the slice-by-slice EFLAGS comparison.
bits 16
org 0
ROMSEG equ 0xf000
RESULTS equ 0x200000
BUF    equ 0x280000
%ifndef ITER
%define ITER 120
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
    mov gs, ax
    mov ax, 0x18            ; data segment with base 0x1000
    mov ds, ax
    mov fs, ax
    mov esp, 0x90000
    mov esi, RESULTS - 0x1000   ; DS-relative
    mov eax, 0x12345678
    mov ebx, 0x9abcdef1
    mov ebp, ITER

; save AH (SF ZF AF PF CF) and OF, then the register
%macro FL 1
    lahf
    seto al
    mov [esi], ax
    mov [esi+4], %1
    add esi, 8
%endmacro

.loop:
    imul eax, eax, 1103515245
    add eax, 12345
    imul ebx, ebx, 69069
    add ebx, eax
    mov [esi], eax
    mov [esi+4], ebx
    add esi, 8
    push eax
    push ebx

    ; ---- 16-bit operand size ----
    mov ecx, eax
    mov edx, ebx
    add cx, dx
    FL ecx
    adc cx, 0x1234
    FL ecx
    sbb dx, cx
    FL edx
    sub cx, -3
    FL ecx
    and dx, 0x8001
    FL edx
    cmp cx, dx
    FL ecx
    xor [esi+4], cx
    FL edx
    mov [esi+2], dx
    or cx, [esi]
    FL ecx
    test cx, 0x8000
    FL ecx
    mov cx, 0x7fff
    inc cx
    FL ecx
    dec dx
    FL edx
    mov dx, [esp]
    imul cx, dx
    FL ecx
    imul cx, dx, -300
    FL ecx
    imul cx, [esp+2], 7
    FL ecx
    neg dx
    FL edx
    not word [esi+4]
    neg word [esi+6]
    FL edx
    mov word [esi], 0xbeef
    mov cx, [esp+4]
    cmp cx, dx
    cmovl cx, dx
    mov [esi+4], cx
    add esi, 8
    movzx cx, bl
    movsx dx, bh
    FL ecx
    mov [esi], edx
    lea cx, [eax+ebx*2+0x1234]
    mov [esi+4], ecx
    add esi, 8
    mov eax, [esp+4]
    cbw
    mov [esi], eax
    cwd
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    xchg ax, bx
    xchg [esi], bx
    xchg cx, ax
    mov [esi+4], ecx
    add esi, 8
    inc word [esi-4]
    FL ecx
    add word [esi-8], 0x8000
    FL ecx
    shl cx, 3
    FL ecx
    sar dx, 1
    FL edx
    mov cl, bl
    rol dx, cl
    FL edx
    mov eax, [esp+4]
    mov ebx, [esp]
    bsf cx, ax
    FL ecx
    bsr cx, bx
    FL ecx
    bt ax, 9
    FL eax
    btc bx, 15
    FL ebx
    mov cx, 0x1111
    xadd cx, ax
    FL ecx
    mov [esi], ax
    mov [esi+2], cx
    cmpxchg [esi], dx
    FL eax
    mov ax, [esi]
    cmpxchg [esi], dx
    FL eax
    mov eax, [esp+4]
    mov ecx, ebx
    mov [esi], ax
    mul cx
    FL edx
    mov [esi], eax
    mov eax, [esp+4]
    imul word [esi]
    FL edx
    mov [esi], eax
    mov eax, [esp+4]
    xor edx, edx
    mov dx, ax
    shr dx, 4               ; dx < divisor
    mov cx, bx
    or cx, 0x8000
    div cx
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    cwd
    mov cx, bx
    or cx, 0x100
    and cx, 0x7fff
    idiv cx
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    mov ebx, [esp]

    ; ---- 8 and 32 bits: MUL/IMUL/DIV/IDIV one operand ----
    mul bl
    FL eax
    mov eax, [esp+4]
    imul bh
    FL eax
    mov eax, [esp+4]
    mul ebx
    FL edx
    mov [esi], eax
    add esi, 4
    mov eax, [esp+4]
    imul dword [esp]
    FL edx
    mov [esi], eax
    add esi, 4
    mov eax, [esp+4]
    mov edx, eax
    shr edx, 16
    mov ecx, ebx
    or ecx, 0x80000000
    div ecx
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    cdq
    mov ecx, ebx
    and ecx, 0x7fffffff
    or ecx, 0x100
    idiv ecx
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    neg ecx
    cdq
    idiv ecx
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    mov eax, [esp+4]
    and eax, 0x7fff
    mov cl, bl
    or cl, 0x80
    div cl
    mov [esi], eax
    mov eax, [esp+4]
    and eax, 0x1fff
    mov cl, bl
    or cl, 0x41
    and cl, 0x7f
    idiv cl
    mov [esi+4], eax
    add esi, 8

    ; ---- shifts and rotates: every kind, by 1, imm, CL, register and memory ----
%macro SHIFTS 1
    mov eax, [esp+4]
    mov ebx, [esp]
    mov ecx, ebx
    shr ecx, 3              ; CL: any count, 0 included
    %1 eax, 1
    FL eax
    %1 eax, 5
    FL eax
    %1 eax, cl
    FL eax
    %1 bl, cl
    FL ebx
    %1 bh, 3
    FL ebx
    %1 bx, cl
    FL ebx
    mov [esi], ebx
    %1 dword [esi], cl
    FL ebx
    %1 byte [esi-8], 7
    FL ebx
    %1 word [esi-4], 1
    FL ebx
%endmacro
    SHIFTS rol
    SHIFTS ror
    SHIFTS rcl
    SHIFTS rcr
    SHIFTS shl
    SHIFTS shr
    SHIFTS sar
    mov eax, [esp+4]
    mov ebx, [esp]
    mov ecx, eax
    shr ecx, 5
    shld eax, ebx, 7
    FL eax
    shrd eax, ebx, 13
    FL eax
    shld eax, ebx, cl
    FL eax
    mov [esi], ebx
    shrd [esi], eax, cl
    FL ebx
    stc
    rcl eax, 1
    FL eax
    cmc
    rcr eax, 1
    FL eax
    clc
    rcl ebx, cl
    FL ebx

    ; ---- dead flags: a shift, rotate or ALU op whose flags a later op in the
    ; same run overwrites computes none (region.ts flagsDeadAfter); around it,
    ; the neighbours that do see them: INC/DEC keep CF, ADC/SBB/CMOV/LAHF read
    mov eax, [esp+4]
    mov ebx, [esp]
    mov ecx, eax
    rol ecx, 7
    add ecx, ebx            ; overwrites all: rol's CF and OF dead
    FL ecx
    mov edx, ebx
    shr edx, 3
    inc edx                 ; keeps shr's CF, which LAHF reads
    FL edx
    mov edx, ebx
    shl edx, 5
    mov ecx, edx
    not ecx
    lea ecx, [ecx+eax*2+3]
    xor ecx, eax            ; shl's flags dead through MOV, NOT, LEA
    FL ecx
    rol edx, 1
    adc edx, eax            ; reads rol's CF
    FL edx
    ror edx, 3
    sbb ecx, edx            ; reads ror's CF
    FL ecx
    sar edx, 2
    dec edx
    movzx ecx, dl
    add edx, ecx            ; sar's and dec's flags dead
    FL edx
    sub edx, eax
    cmovc ecx, ebx          ; reads SUB's CF
    ror ecx, 9
    test ecx, 0x10          ; ror's dead
    FL ecx
    add eax, ebx
    shr eax, 1
    rcr ebx, 1              ; reads shr's CF
    FL ebx
    mov [esi], eax
    rol eax, 3
    add eax, [esi]          ; a memory operand may leave the region: rol's flags live until it
    FL eax
    and eax, ebx
    inc eax
    cmp eax, ecx            ; AND's and INC's dead
    FL eax

    ; ---- bit instructions ----
    mov eax, [esp+4]
    mov ebx, [esp]
    bt eax, ebx
    FL eax
    bts eax, 31
    FL eax
    btr eax, ebx
    FL eax
    btc eax, 3
    FL eax
    mov [esi], eax
    mov [esi+4], ebx
    mov ecx, ebx
    and ecx, 63
    bts [esi], ecx
    FL ecx
    mov ecx, -5
    btr [esi+8], ecx        ; a negative offset addresses the dword before
    FL ecx
    btc dword [esi], 17
    FL ecx
    bt dword [esi+4], 31
    FL ecx
    mov ecx, eax
    and ecx, 0xff00
    bsf edx, ecx
    FL edx
    bsr edx, ecx
    FL edx
    ; F3 0F BC/BD (TZCNT/LZCNT's encoding; this CPU has no BMI1, so BSF/BSR), register and memory
    db 0xf3
    bsf edx, ecx
    FL edx
    mov [esi], ecx
    db 0xf3
    bsr edx, [esi]
    FL edx
    mov edx, ebx
    bswap edx
    mov [esi], edx
    add esi, 4

    ; ---- XCHG, XADD, CMPXCHG, LOCK ----
    mov eax, [esp+4]
    mov ebx, [esp]
    xchg eax, ebx
    xchg eax, ecx
    xchg [esi], eax
    xchg cl, [esi+1]
    xadd eax, ebx
    FL eax
    lock xadd [esi], ebx
    FL ebx
    xadd ecx, ecx
    FL ecx
    mov eax, [esi]
    lock cmpxchg [esi], ecx
    FL eax
    cmpxchg [esi], ecx
    FL eax
    cmpxchg ebx, ecx
    FL ebx
    ; CMPXCHG8B: equal (ECX:EBX stored, ZF set), then not equal (the quadword
    ; into EDX:EAX, ZF clear); LOCK, an FS override (FS has DS's base)
    mov edx, [esp]
    mov [esi+16], eax
    mov [esi+20], edx
    lock cmpxchg8b [esi+16]
    FL edx
    mov edx, [esi+8]
    FL edx
    cmpxchg8b [fs:esi]
    FL edx
    FL ecx
    lock add [esi], ebx
    FL ebx
    lock or byte [esi+3], 0x81
    FL ebx
    lock inc dword [esi]
    FL ebx
    lock dec word [esi+2]
    FL ebx
    lock neg dword [esi]
    FL ebx
    lock not byte [esi]
    lock bts dword [esi], 5
    FL ebx
    lock xchg [esi+4], eax
    lock sbb [esi], eax
    FL eax
    inc byte [esi+1]
    FL eax
    dec dword [esi]
    FL eax
    mov eax, [esi]
    mov [esi+4], eax
    add esi, 8

    ; ---- string instructions ----
    mov eax, [esp+4]
    mov ebx, [esp]
    push esi
    push esi
    cld
    mov edi, BUF
    mov ecx, ebx
    and ecx, 0x1fff         ; 0..8191 dwords: up to 8 pages, two REP chunks
    rep stosd
    mov [es:BUF+0x9000], edi
    mov edi, BUF + 3
    mov ecx, ebx
    shr ecx, 20             ; misaligned words, sometimes across a page
    rep stosw
    lea esi, [BUF - 0x1000 + 1]  ; DS-relative
    mov edi, BUF + 0x4000 + 2
    mov ecx, eax
    and ecx, 0x3fff         ; up to 4 pages of bytes, over 4096: two chunks
    rep movsb
    mov esi, BUF - 0x1000
    mov edi, BUF + 0x8000
    mov ecx, eax
    shr ecx, 22
    rep movsd
    mov ecx, ebx
    shr ecx, 24
    mov esi, BUF - 0x1000 + 0x400
    rep lodsw
    mov esi, BUF - 0x1000 + 0x100
    mov edi, BUF + 0x101
    mov ecx, 100
    rep movsb               ; overlapping: the first byte repeated
    mov esi, BUF - 0x1000 + 0x200
    mov edi, BUF + 0x202
    mov ecx, 50
    rep movsd               ; overlapping by half an element
    mov esi, BUF - 0x1000 + 0x3f0
    mov edi, BUF + 0x300
    mov ecx, 0x40
    rep movsd               ; the destination behind the source, overlapping
    push eax
    xor eax, eax
    mov edi, BUF + 0x2ff0
    mov ecx, ebx
    and ecx, 0x7ff          ; zeroing, across a page end
    rep stosd
    mov eax, 0xa5a5a5a5
    mov edi, BUF + 0x1ffe
    mov ecx, 0x40
    rep stosw               ; one byte repeated, misaligned, across a page end
    mov al, 0x3c
    mov edi, BUF + 0x3f00
    mov ecx, ebx
    and ecx, 0x1fff
    rep stosb
    pop eax
    std
    mov edi, BUF + 0x5ffc
    mov ecx, ebx
    shr ecx, 21             ; backwards across pages
    rep stosd
    mov esi, BUF - 0x1000 + 0x3fff
    mov edi, BUF + 0x6fff
    mov ecx, eax
    shr ecx, 20
    rep movsb
    movsd
    lodsb
    stosw
    cmpsb
    scasd
    cld
    movsb
    movsw
    lodsd
    stosb
    cmpsd
    scasw
    ; REPE/REPNE CMPS/SCAS: equal runs of the buffer, a mismatch somewhere or none
    cld
    mov esi, BUF - 0x1000 + 0x4002
    mov edi, BUF + 1
    mov ecx, eax
    and ecx, 0x3fff
    repe cmpsb
    lahf
    mov [es:BUF+0x9010], eax
    mov [es:BUF+0x9014], ecx
    mov esi, BUF - 0x1000 + 0x100
    mov edi, BUF + 0x101
    mov ecx, 120
    repe cmpsb              ; the replicated bytes, then the first different one
    lahf
    mov [es:BUF+0x9018], eax
    mov [es:BUF+0x901c], ecx
    mov edi, BUF
    mov ecx, ebx
    and ecx, 0x1fff
    mov eax, [es:BUF + 0x7f0]
    repne scasd
    mov [es:BUF+0x9020], ecx
    mov edi, BUF + 0x4002
    mov ecx, 5000
    mov al, bl
    repne scasb             ; more than one chunk when AL is not there
    mov [es:BUF+0x9024], ecx
    mov ecx, 0
    repe cmpsd              ; ECX = 0: nothing, flags kept
    std
    mov ecx, 3
    repe scasw
    cld
    mov eax, [esp+4]
    mov [es:BUF+0x9004], esi
    mov [es:BUF+0x9008], edi
    mov [es:BUF+0x900c], ecx
    FL eax
    pop esi
    pop esi
    ; a checksum of the buffer (the test also compares all RAM)
    xor edx, edx
    mov ecx, 0x2400
    mov edi, BUF
.sum:
    add edx, [es:edi]
    rol edx, 1
    add edi, 4
    dec ecx
    jnz .sum
    mov [esi], edx
    add esi, 4

    ; ---- stack forms, indirect transfers, flag instructions ----
    mov eax, [esp+4]
    mov ebx, [esp]
    ; PUSH Sreg writes the low 16 bits of the dword it moves ESP by (the
    ; slot holds EBX's bits first), MOV r32,Sreg zero-extends, MOV m16,Sreg
    ; writes 16 bits
%macro PUSHSEG 1
    push ebx
    pop ecx
    push %1
    pop ecx
    mov [esi], ecx
    add esi, 4
%endmacro
    PUSHSEG es
    PUSHSEG cs
    PUSHSEG ss
    PUSHSEG ds
    PUSHSEG fs
    PUSHSEG gs
    mov ecx, eax
    mov ecx, fs
    mov edx, ebx
    mov edx, ss
    mov [esi], ecx
    mov [esi+4], edx
    mov [esi+8], eax
    mov [esi+8], gs
    mov [esi+12], ebx
    mov [esi+14], cs
    add esi, 16
    push 0x12345678
    push -7
    push dword [esp+4]
    pop dword [esi]
    pop ecx
    pop edx
    mov [esi+4], ecx
    add esi, 8
    call fnframe
    mov [esi], eax
    add esi, 4
    mov ecx, fnframe + ROMSEG*16
    call ecx
    mov [esi], eax
    add esi, 4
    call [fs:fptr - 0x1000 + ROMSEG*16]
    mov [esi], eax
    add esi, 4
    mov ecx, ebx
    and ecx, 3
    jmp [fs:jtab - 0x1000 + ROMSEG*16 + ecx*4]
.j0:
    add eax, 1
.j1:
    add eax, 2
.j2:
    add eax, 4
.j3:
    mov [esi], eax
    add esi, 4
    push 3
    push 4
    call fnret8
    mov [esi], eax
    add esi, 4
    mov eax, [esp+4]
    pushfd
    pop dword [esi]
    add esi, 4
    mov ecx, 3
.spin:
    pause
    dec ecx
    jnz .spin
    stc
    lahf
    mov [esi], ah
    clc
    cmc
    lahf
    mov [esi+1], ah
    mov ah, bl
    sahf
    FL eax
    mov ax, 0x80
    add al, al              ; OF, CF, ZF from an 8-bit add, then read through SAHF's materialised flags
    mov ah, 0xd5
    sahf
    FL eax
    mov eax, [esp+4]
    mov [es:0x280100], eax
    mov ecx, [0x280100 - 0x1000]
    mov [fs:0x280104 - 0x1000], cx
    mov al, [gs:0x280105]
    mov [0x280108 - 0x1000], eax
    mov eax, [fs:0x280100 - 0x1000]
    mov [es:0x28010c], ax
    FL ecx

    pop ebx
    pop eax
    dec ebp
    jnz .loop

    mov [es:RESULTS - 4], esi
    mov al, 0
    cli
    hlt

fnframe:
    push ebp
    mov ebp, esp
    sub esp, 16
    mov [ebp-4], eax
    add eax, [ebp-4]
    leave
    ret

fnret8:
    mov eax, [esp+4]
    imul eax, [esp+8]
    ret 8

align 4
fptr: dd fnframe + ROMSEG*16
jtab: dd ROMSEG*16 + pm32.j0, ROMSEG*16 + pm32.j1, ROMSEG*16 + pm32.j2, ROMSEG*16 + pm32.j3

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

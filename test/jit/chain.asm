; Chained wasm regions against the interpreter (wasm/chain.ts): code on
; several RAM pages with paging on, calling and returning across pages
; (direct, through a table, and through a page whose mapping changes),
; a loop spanning two pages (with an instruction that crosses the page
; end, whose byte on the next page is rewritten now and then), flags produced on one page and read on
; another, self-modifying stores into a page that is part of the running
; chain (from the caller's page, and from a callee into the page it
; returns to), and page-table changes (PTE rewrite + INVLPG, CR3 reload)
; under a page that is called every iteration. The test compares
; registers after every slice and RAM at the end.
ROMSEG  equ 0xf000
PD      equ 0x100000
PT      equ 0x101000
RESULTS equ 0x200000
RAMCODE equ 0x300000
ALIAS   equ 0x380000            ; linear page mapped to VARIANT_A or VARIANT_B
COPYBUF equ 0x2fe000            ; REP MOVSD's destination (two pages when long)
VARIANT_A equ RAMCODE + 5*0x1000
VARIANT_B equ RAMCODE + 6*0x1000
%ifndef ITER
%define ITER 400
%endif
MANY_FNS    equ 24
MANY_ROUNDS equ 15             ; below the test's threshold of 20 per function

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
    mov fs, ax
    mov gs, ax
    mov esp, 0x90000
    cld
    mov esi, ROMSEG*16 + 0x4000
    mov edi, RAMCODE
    mov ecx, ram_end - ram_start
    rep movsb
    ; identity map of the first 4 MiB, ALIAS mapped to VARIANT_A
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
    mov dword [PT + (ALIAS >> 12) * 4], VARIANT_A | 7
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov eax, main
    jmp eax

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff       ; 0x08 flat code
        dq 0x00cf92000000ffff       ; 0x10 flat data
gdtr:   dw 23
        dd ROMSEG*16 + gdt

section .ram start=0x4000 vstart=0x300000
ram_start:
; ---- page 0: the main loop ----
main:
    mov ebp, ITER
    mov eax, 0x12345678
    xor ebx, ebx
    mov esi, RESULTS
.loop:
    imul eax, eax, 1103515245
    add eax, 12345
    call p1_fn                  ; page 1, which calls page 2, which returns into a page it may have patched
    adc ebx, edx                ; CF from the CMP on page 1
    mov ecx, eax
    shr ecx, 16
    and ecx, 3
    call [fn_table + ecx*4]     ; pages 2 and 3
    jz .z                       ; ZF from the callee's page
    xor ebx, edx
    jmp .nz
.z:
    add ebx, edx
.nz:
    mov ecx, eax
    and ecx, 15
    inc ecx
    call span_loop              ; a loop across the end of page 3 into page 4
    add ebx, edx
    ; now and then (one iteration in 64) rewrite the ModRM byte of the XOR
    ; that crosses from page 3 into page 4 (XOR EDX,ECX or XOR EDX,EAX): a
    ; region on page 3 that took it must see the byte on page 4 change
    test eax, 0x3f00000
    jnz .keep
    mov ecx, eax
    shr ecx, 9
    and ecx, 1
    mov cl, [span_modrm + ecx]
    mov [span_loop.xor + 1], cl
.keep:
    mov ecx, eax
    shr ecx, 4
    and ecx, 15
    inc ecx
    call edge_loop              ; a loop in the last bytes of page 2, falling through into page 3
    xor ebx, edx
    mov ecx, eax
    shr ecx, 8
    and ecx, 31
    inc ecx
    call hop_loop               ; a loop whose body jumps from page 3 to page 4 and back
    sub ebx, edx
    call ALIAS                  ; the remapped page
    rol ebx, 3
    add ebx, edx
    test ebp, 31
    jnz .nopatch
    mov [p1_imm], al            ; store into page 1, called every iteration
.nopatch:
    test ebp, 15
    jnz .noremap
    xor dword [PT + (ALIAS >> 12) * 4], VARIANT_A ^ VARIANT_B
    test ebp, 16
    jz .cr3
    invlpg [ALIAS]
    jmp .noremap
.cr3:
    mov ecx, cr3
    mov cr3, ecx
.noremap:
    ; a REP MOVSD between pages the CR3 reload above flushed from the TLB:
    ; the region's page checks for the chunk miss, the tier refills the
    ; entries and the copy goes on compiled
    push esi
    mov esi, RAMCODE + 0x123
    mov edi, COPYBUF
    mov ecx, eax
    shr ecx, 20
    and ecx, 0x3ff
    add ecx, 8
    rep movsd
    pop esi
    add ebx, [COPYBUF + 4]
    mov [esi], ebx
    mov [esi+4], edx
    add esi, 8
    dec ebp
    jnz .loop
    ; many functions on one page, each called fewer times than the threshold
    ; (page 8): the region compiled for the first one must take in the
    ; others as they are entered, not leave them to the lower tiers
    mov ebp, MANY_ROUNDS
.rounds:
    xor edi, edi
.each:
    call [many_table + edi*4]
    add ebx, edx
    inc edi
    cmp edi, MANY_FNS
    jb .each
    mov [esi], ebx
    add esi, 4
    dec ebp
    jnz .rounds
    mov [RESULTS - 4], esi
    cli
    hlt

; ---- page 1 ----
align 4096, db 0xcc
p1_fn:
    mov edx, eax
    add edx, 0x11
p1_imm equ $ - 1
    call p2_patch               ; may rewrite p1_after's immediate, then returns there
p1_after:
    add edx, 0x22
p1_after_imm equ $ - 1
    cmp edx, eax
    ret
p1_leaf:
    add edx, 7
    ret

; ---- page 2 ----
align 4096, db 0xcc
p2_patch:
    test eax, 0x1f0
    jnz .no
    mov [p1_after_imm], dl      ; the page this call returns into
.no:
    ret
f2a:
    mov edx, eax
    shr edx, 3
    call p1_leaf
    test edx, 0x100
    ret
f2b:
    lea edx, [eax + eax*4]
    call f3a
    test edx, edx
    ret
    times 0xff8 - ($ - p2_patch) db 0x90
edge_loop:                      ; the last 8 bytes of page 2: instructions there are compiled too
    add edx, ecx
    imul edx, edx, 3
    dec ecx
    jnz edge_loop               ; ends exactly at the page end: the loop's exit falls
                                ; through into f3a (page 3), whose RET returns to the caller

; ---- page 3 ----
align 4096, db 0xcc
f3a:
    mov edx, eax
    xor edx, 0x5a5a5a5a
    call p1_leaf
    and edx, 0x7ff
    ret
f3b:
    mov edx, eax
    not edx
    call f2a
    ret
hop_loop:
    xor edx, edx
hop_head:
    add edx, ecx
    jmp hop_tail                ; page 4
hop_back:
    dec ecx
    jnz hop_head
    ret
    times 0xff8 - ($ - f3a) db 0x90
span_loop:                      ; the last bytes of page 3
    xor edx, edx
.l:
    add edx, ecx
    imul edx, edx, 3            ; straddles or follows the page end
.xor:
    xor edx, ecx                ; crosses the page end (its ModRM is page 4's first byte)
    dec ecx
    jnz .l
    ret
    ; (page 4 from here)
align 16, db 0xcc
hop_tail:
    imul edx, edx, 5
    xor edx, ecx
    jmp hop_back                ; page 3

; ---- pages 5 and 6: what ALIAS maps, called at ALIAS ----
align 4096, db 0xcc
variant_a:
    mov edx, eax
    rol edx, 5
    mov ecx, p1_leaf
    call ecx
    xor edx, 0xa
    ret
align 4096, db 0xcc
variant_b:
    mov edx, eax
    ror edx, 7
    mov ecx, f3a
    call ecx
    sub edx, 0xb
    ret

; ---- page 7: data ----
align 4096, db 0xcc
fn_table:
    dd f2a, f2b, f3a, f3b
span_modrm:
    db 0xca, 0xc2               ; XOR EDX,ECX / XOR EDX,EAX
many_table:
%assign i 0
%rep MANY_FNS
    dd many_ %+ i
%assign i i+1
%endrep

; ---- page 8: many short functions, kernel style (a 5-byte NOP at the entry, INT3 padding between) ----
align 4096, db 0xcc
%assign i 0
%rep MANY_FNS
many_ %+ i:
    db 0x3e, 0x8d, 0x74, 0x26, 0x00
    mov edx, eax
%rep 12
    imul edx, edx, 3 + 2*i
    xor edx, ebx
    add edx, i
%endrep
    ret
align 16, db 0xcc
%assign i i+1
%endrep
ram_end:

section .reset start=0xfff0 vstart=0xfff0
bits 16
    jmp ROMSEG:start16
    times 16 - ($ - $$) db 0

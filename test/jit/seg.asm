; MOV ES/DS/FS/GS in compiled regions against the interpreter
; (test/jit/wasm-tier.test.ts): regions hand them to the interpreter's own
; segment load through an import (src/jit/sys-call.ts) instead of leaving
; for each. A loop on a RAM page loads flat segments (the region goes on),
; FS with a non-zero base and GS from memory (accesses through them after
; the load must use the new bases), reads the selectors back with MOV r,Sreg
; and PUSH (the exchange area's copies), and now and then:
;  - ES with a 2 KiB limit: no longer flat, the region leaves after the load
;    (and again when ES is flat once more); a STOSD past the limit faults;
;  - a null selector into GS;
;  - a not-present descriptor into DS: #NP, the handler steps over it;
;  - a selector past the GDT's limit into FS: #GP, the same;
;  - a descriptor whose accessed bit is clear: the load sets it, a write into
;    the GDT's page, which holds compiled code (the handlers).
; With paging on and CR4.PGE, every iteration also calls code on a page that
; two page directories map to different physical pages, which loads CR3 with
; the other directory: the instruction behind the MOV CR3 comes from the
; other page, so the region must leave after it (its own code page's
; translation was flushed), while the loop's page, mapped global, goes on.
; The handlers log each exception's vector, error code and EIP. The test
; compares registers after every slice and RAM at the end.
ROMSEG  equ 0xf000
IDT     equ 0x102000
RESULTS equ 0x200000
LOG     equ 0x210000
LOGPTR  equ 0x20fff0
SKIPLEN equ 0x20fff4            ; the length of the instruction the #NP/#GP handler steps over
DATA    equ 0x220000
FSBASE  equ 0x230000            ; selector 0x18's base
RAMCODE equ 0x300000            ; mapped global
PD_A    equ 0x104000
PT_A    equ 0x105000
PD_B    equ 0x106000
PT_B    equ 0x107000
SWITCH  equ 0x340000            ; linear: physical SWITCH under PD_A, SWITCH_B under PD_B
SWITCH_B equ 0x350000
%ifndef ITER
%define ITER 4000
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
    mov fs, ax
    mov gs, ax
    mov esp, 0x90000
    cld
    mov esi, ROMSEG*16 + 0x4000
    mov edi, RAMCODE
    mov ecx, ram_end - ram_start
    rep movsb
    mov esi, ROMSEG*16 + 0x6000
    mov edi, SWITCH
    mov ecx, 64
    rep movsb
    mov esi, ROMSEG*16 + 0x7000
    mov edi, SWITCH_B
    mov ecx, 64
    rep movsb
    ; PD_A: the first 4 MiB identity-mapped, RAMCODE global; PD_B the same but SWITCH
    mov edi, PD_A
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [PD_A], PT_A | 7
    mov edi, PT_A
    mov eax, 7
    mov ecx, 1024
.pt:
    stosd
    add eax, 4096
    loop .pt
    or dword [PT_A + (RAMCODE >> 12) * 4], 0x100
    mov esi, PT_A
    mov edi, PT_B
    mov ecx, 1024
    rep movsd
    mov dword [PT_B + (SWITCH >> 12) * 4], SWITCH_B | 7
    mov edi, PD_B
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [PD_B], PT_B | 7
    mov eax, cr4
    or eax, 0x80                ; PGE
    mov cr4, eax
    mov eax, PD_A
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    ; #NP and #GP to the handler that steps over the 2-byte MOV, the rest to `other`
    mov edi, IDT
    xor ecx, ecx
.idt:
    mov eax, ROMSEG*16 + other
    cmp ecx, 11
    je .h
    cmp ecx, 13
    jne .n
.h:
    mov eax, ROMSEG*16 + skip
.n:
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
    mov dword [SKIPLEN], 2
    mov eax, RAMCODE
    jmp eax

; #NP/#GP: log the error code and EIP, step over the instruction (SKIPLEN bytes)
skip:
    push eax
    push edi
    mov edi, [LOGPTR]
    mov eax, [esp + 8]          ; the error code
    mov [edi], eax
    mov eax, [esp + 12]         ; EIP
    mov [edi + 4], eax
    add edi, 8
    mov [LOGPTR], edi
    mov eax, [SKIPLEN]
    add [esp + 12], eax         ; EIP past the instruction
    pop edi
    pop eax
    add esp, 4                  ; the error code
    iret
other:
    hlt
    jmp other

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff       ; 0x08 flat code
        dq 0x00cf93000000ffff       ; 0x10 flat data (accessed)
        dq 0x00cf93230000ffff       ; 0x18 data based at FSBASE, 4 GiB limit
        dq 0x00009300000007ff       ; 0x20 data, a 2 KiB limit (byte granular)
        dq 0x00cf13000000ffff       ; 0x28 not present
        dq 0x00cf92000000ffff       ; 0x30 flat data, accessed bit clear
gdt_end:
gdtr:   dw gdt_end - gdt - 1
        dd ROMSEG*16 + gdt
idtr:   dw 32*8 - 1
        dd IDT

section .ram start=0x4000 vstart=0x300000
ram_start:
main:
    mov ebp, ITER
    xor ebx, ebx
    mov esi, RESULTS
    mov dword [DATA], 0x1234567
    mov dword [DATA + 4], 0x18
    mov dword [FSBASE], 0x89abcdef
    mov dword [FSBASE + 4], 0x13579bdf
.loop:
    ; flat into flat: the region goes on
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov eax, [DATA]
    add ebx, eax
    ; FS based at FSBASE: the next access through FS uses the new base
    mov ax, 0x18
    mov fs, ax
    mov eax, [fs:0]
    add ebx, eax
    ; GS from memory
    mov gs, [DATA + 4]
    mov eax, [gs:4]
    xor ebx, eax
    ; the selectors as the region reads them back
    mov ecx, fs
    add ebx, ecx
    push gs
    pop ecx
    rol ebx, 5
    add ebx, ecx
    ; FS flat again
    mov ax, 0x10
    mov fs, ax
    mov eax, [fs:FSBASE]
    sub ebx, eax
    test ebp, 7
    jnz .no_limit
    ; ES limited to 2 KiB, then flat again: the region leaves after each
    mov ax, 0x20
    mov es, ax
    mov ecx, es
    add ebx, ecx
    mov edi, 0x7f8
    mov eax, ebx
    mov dword [SKIPLEN], 1
    stosd                       ; 0x7f8-0x7fb: inside the limit
    stosd                       ; 0x7fc-0x7ff: inside
    stosd                       ; past the limit, on the same page: #GP, stepped over
    mov dword [SKIPLEN], 2
    add ebx, edi
    mov ax, 0x10
    mov es, ax
.no_limit:
    test ebp, 3
    jnz .no_null
    xor eax, eax
    mov gs, ax                  ; null
    mov ecx, gs
    add ebx, ecx
.no_null:
    mov eax, ebp
    and eax, 15
    cmp eax, 5
    jne .no_np
    mov ax, 0x28
    mov ds, ax                  ; #NP, stepped over
    add ebx, [DATA]
.no_np:
    cmp eax, 9
    jne .no_gp
    mov ax, 0x80
    mov fs, ax                  ; past the GDT's limit: #GP, stepped over
    mov ecx, fs
    add ebx, ecx
.no_gp:
    cmp ebp, ITER / 2
    jne .no_acc
    mov ax, 0x30
    mov es, ax                  ; sets the accessed bit in the GDT (a page with code)
    mov ax, 0x10
    mov es, ax
.no_acc:
    ; CR3 to PD_B from SWITCH's page under PD_A, then back from under PD_B
    mov eax, PD_B
    call SWITCH
    add ebx, edx
    mov eax, PD_A
    call SWITCH
    rol ebx, 3
    add ebx, edx
    mov [esi], ebx
    add esi, 4
    and esi, RESULTS | 0xfff
    dec ebp
    jnz .loop
    mov [RESULTS + 0x1000], ebx
    hlt
    jmp $
ram_end:

; the two pages at SWITCH: the same code but for the immediate behind MOV CR3
section .swa start=0x6000 vstart=SWITCH
    mov cr3, eax
    mov edx, 0xaaaa
    ret
section .swb start=0x7000 vstart=SWITCH
    mov cr3, eax
    mov edx, 0xbbbb
    ret

section .reset start=0xfff0 vstart=0xfff0
bits 16
    jmp ROMSEG:start16
    times 16 - ($ - $$) db 0

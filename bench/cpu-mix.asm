; Fixed instruction mix for the interpreter benchmark: 32-bit protected mode
; with paging on, a loop of ordinary compiled-code instructions (moves,
; loads/stores, ALU, compare-and-branch, calls, push/pop, LEA, shifts,
; multiply, a short string copy). Ends with `out 0xf4` (QEMU's isa-debug-exit)
; and cli/hlt (tsvm stops). ITER is set on the nasm command line.
bits 16
org 0
%ifndef ITER
%define ITER 2000000
%endif
ROMSEG equ 0xf000
PD     equ 0x10000
PT     equ 0x11000
DATA   equ 0x200000

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
    mov esp, 0x90000
    ; identity-map the first 4 MiB
    mov edi, PT
    mov eax, 3
    mov ecx, 1024
.fill:
    stosd
    add eax, 0x1000
    loop .fill
    mov dword [PD], PT | 3
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax

    mov ebp, ITER
    mov esi, DATA
    xor ebx, ebx
.loop:
    mov eax, [esi]
    add eax, ebx
    mov [esi+4], eax
    lea edx, [eax+ebx*4+12]
    xor edx, eax
    shl edx, 3
    cmp edx, 0x1000
    jb .small
    sub edx, 0x800
.small:
    and edx, 0xfff
    mov ecx, [esi+edx]
    inc ebx
    push ecx
    call fn
    pop ecx
    imul eax, ecx, 7
    test eax, 1
    jz .even
    or ebx, 1
.even:
    movzx ecx, byte [esi+8]
    add [esi+12], ecx
    dec ebp
    jnz .loop

    mov al, 0
    out 0xf4, al
    cli
    hlt

fn:
    mov eax, [esp+4]
    add eax, 3
    ret

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff
        dq 0x00cf92000000ffff
gdtr:   dw 23
        dd ROMSEG*16 + gdt

times 0xfff0 - ($ - $$) db 0
bits 16
    jmp ROMSEG:start16
times 0x10000 - ($ - $$) db 0

; tsvm test firmware for dirty-page tracking (src/board/dirty.test.ts): enters
; 32-bit protected mode with paging (identity map of the first 4 MiB), then
; loops: wait until the byte at 0x600 differs from the last phase done, and
; for phase N write every page of [N * 64 KiB, N * 64 KiB + 64 KiB) twice
; (the second pass hits pages the first made dirty), then report N on the
; debug console (port 0xE9). Nothing else is written: no stack, interrupts off.
; Build: nasm -f bin dirty.asm -o dirty.bin
bits 16
org 0
ROMSEG  equ 0xf000
PD      equ 0x1000           ; page directory (physical page 1)
PT      equ 0x2000           ; the page table mapping the first 4 MiB (page 2)

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
    ; identity-map 4 MiB (present, writable), A and D clear
    mov edi, PT
    mov eax, 0x003
    mov ecx, 1024
.pt:
    mov [edi], eax
    add eax, 0x1000
    add edi, 4
    loop .pt
    mov dword [PD], PT | 0x003
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    xor ebx, ebx               ; bl = the last phase done
poll:
    mov al, [0x600]
    cmp al, bl
    je poll
    mov bl, al
    movzx edx, bl
    shl edx, 16                ; phase N: 64 KiB at N * 64 KiB
    mov esi, 2
.pass:
    mov edi, edx
    mov ecx, 16
.fill:
    mov [edi + 0x123], bl
    add edi, 0x1000
    loop .fill
    dec esi
    jnz .pass
    mov al, bl
    out 0xe9, al
    jmp poll

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff      ; 0x08: flat 32-bit code
    dq 0x00cf92000000ffff      ; 0x10: flat 32-bit data
gdtr:
    dw gdtr - gdt - 1
    dd ROMSEG*16 + gdt

    times 0xfff0 - ($ - $$) db 0
bits 16
    jmp ROMSEG:start16         ; the reset vector
    times 0x10000 - ($ - $$) db 0

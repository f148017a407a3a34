; tsvm bare-metal demo: a 64 KiB firmware image that starts at the reset
; vector in real mode, reads CPUID, enters 32-bit protected mode, turns on
; paging, computes some primes and prints everything to the debug console
; (port 0xE9). Build: nasm -f bin hello.asm -o demo.bin
bits 16
org 0
ROMSEG  equ 0xf000
PD      equ 0x10000          ; page directory (physical)
PT      equ 0x11000          ; one page table mapping the first 4 MiB

start16:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7c00
    mov ax, cs
    mov ds, ax
    mov si, banner
    call puts16
    ; CPUID vendor string
    xor eax, eax
    cpuid
    mov [ss:0x500], ebx         ; the ROM is read-only: build the string in RAM
    mov [ss:0x504], edx
    mov [ss:0x508], ecx
    mov byte [ss:0x50c], 0
    mov si, vmsg
    call puts16
    push ds
    push ss
    pop ds
    mov si, 0x500
    call puts16
    pop ds
    mov si, nl
    call puts16
    ; protected mode
    lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(ROMSEG*16 + pm32)

puts16:                       ; DS:SI -> port 0xE9, NUL-terminated
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp puts16
.done:
    ret

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x90000
    mov esi, ROMSEG*16 + pmmsg
    call puts
    ; identity-map 4 MiB with 4 KiB pages, then enable paging
    mov edi, PT
    mov eax, 0x003
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
    mov esi, ROMSEG*16 + pgmsg
    call puts
    ; primes below 100 by trial division
    mov ebx, 2
.next:
    mov ecx, 2
.try:
    mov eax, ecx
    mul ecx
    cmp eax, ebx
    ja .prime
    mov eax, ebx
    xor edx, edx
    div ecx
    test edx, edx
    jz .notprime
    inc ecx
    jmp .try
.prime:
    mov eax, ebx
    call putdec
    mov al, ' '
    out 0xe9, al
.notprime:
    inc ebx
    cmp ebx, 100
    jb .next
    mov esi, ROMSEG*16 + bye
    call puts
    cli
    hlt

puts:                         ; ESI -> port 0xE9
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp puts
.done:
    ret

putdec:                       ; EAX as decimal
    mov ecx, 10
    xor edi, edi
.div:
    xor edx, edx
    div ecx
    push edx
    inc edi
    test eax, eax
    jnz .div
.out:
    pop eax
    add al, '0'
    out 0xe9, al
    dec edi
    jnz .out
    ret

banner: db "tsvm bare-metal demo (the Linux guest arrives with a later milestone)", 10
        db "real mode: reset vector reached", 10, 0
vmsg:   db "CPUID vendor: ", 0
nl:     db 10, 0
pmmsg:  db "32-bit protected mode: on", 10, 0
pgmsg:  db "paging: on (4 KiB pages, identity map)", 10, "primes below 100: ", 0
bye:    db 10, "halting with interrupts disabled", 10, 0

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff     ; 0x08: code, flat 4 GiB
        dq 0x00cf92000000ffff     ; 0x10: data, flat 4 GiB
gdtr:   dw 23
        dd ROMSEG*16 + gdt

times 0xfff0 - ($ - $$) db 0
bits 16
reset:
    jmp ROMSEG:start16
times 0x10000 - ($ - $$) db 0

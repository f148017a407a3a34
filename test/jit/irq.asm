; The wasm tier against the interpreter (test/jit/wasm-tier.test.ts) around
; interrupts: CLI, STI, POPF and RDTSC in compiled code while the PIT raises
; IRQ 0 every few hundred instructions. The handler logs the EIP and EFLAGS
; each interrupt (and each single-step trap) arrived at, so an interrupt
; delivered one instruction early or late shows in RAM as well as in the
; slice-by-slice comparison: STI's shadow (the interrupt comes after the
; instruction behind STI, and never between STI and a CLI right behind it),
; POPF that sets IF with an interrupt pending (at once, no shadow), POPF that
; clears IF, STI with IF already set, POPF that sets TF (the trap after the
; next instruction), RDTSC in the middle of straight runs.
bits 16
org 0
ROMSEG equ 0xf000
IDT     equ 0x100000
LOG     equ 0x110000
LOGEND  equ 0x180000
LOGPTR  equ 0x070000
COUNT   equ 0x070004
RESULTS equ 0x200000
%ifndef ITER
%define ITER 2000
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
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov esp, 0x90000
    ; every vector to the one handler (interrupt gates: IF off inside)
    mov edi, IDT
    mov ecx, 256
.idt:
    mov eax, ROMSEG*16 + handler
    mov [edi], ax
    mov word [edi+2], 0x08
    mov word [edi+4], 0x8e00
    shr eax, 16
    mov [edi+6], ax
    add edi, 8
    loop .idt
    lidt [ROMSEG*16 + idtr]
    mov dword [LOGPTR], LOG
    mov dword [COUNT], 0
    ; PIC: master at 0x20, slave at 0x28, only IRQ 0 unmasked
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xa1, al
    mov al, 1
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
    ; PIT channel 0, mode 2, a tick every 23 * 838 ns (about 960 instructions at 20 ns each)
    mov al, 0x34
    out 0x43, al
    mov al, 23
    out 0x40, al
    xor al, al
    out 0x40, al
    mov esi, RESULTS
    mov eax, 0x12345678
    mov ebx, 0x9abcdef1
    xor ecx, ecx
    xor edx, edx
    mov ebp, ITER
    sti

%macro WORK 0
    imul eax, eax, 1103515245
    add eax, 12345
    add ebx, eax
    xor ecx, ebx
    rol ecx, 3
    sub edx, ecx
%endmacro

.loop:
    ; interrupts off for a while (a tick falls due), then STI: the interrupt comes after the next instruction
    cli
    WORK
    WORK
    WORK
    WORK
    sti
    add ebx, 7
    add ecx, ebx
    WORK
    ; STI then CLI: the shadow keeps a pending interrupt out
    cli
    WORK
    WORK
    WORK
    sti
    cli
    WORK
    sti
    ; STI with IF set: no shadow
    sti
    WORK
    ; POPF restoring IF (set) after a CLI section: a pending interrupt at once
    pushfd
    cli
    WORK
    WORK
    WORK
    popfd
    inc edx
    WORK
    ; RDTSC inside straight runs
    push eax
    push edx
    rdtsc
    mov [esi], eax
    mov [esi+4], edx
    add esi, 8
    pop edx
    pop eax
    WORK
    ; POPF clearing IF, then setting it again through POPF
    pushfd
    pop edi
    and edi, ~0x200
    push edi
    popfd
    WORK
    WORK
    WORK
    or edi, 0x200
    push edi
    popfd
    add ebx, ecx
    ; POPF setting TF: a single-step trap after each instruction until POPF clears it
    test ebp, 15
    jnz .notf
    pushfd
    or dword [esp], 0x100
    popfd
    add eax, 1
    add ebx, 2
    pushfd
    and dword [esp], ~0x100
    popfd
    add ecx, 3
.notf:
    ; flags through POPF: arithmetic flags, DF
    pushfd
    pop edi
    xor edi, 0x8d5 | 0x400
    push edi
    popfd
    lahf
    mov [esi], eax
    add esi, 4
    cld
    WORK
    mov [esi], eax
    mov [esi+4], ebx
    mov [esi+8], ecx
    mov [esi+12], edx
    add esi, 16
    dec ebp
    jnz .loop
    ; the tick stops
    mov al, 0xff
    out 0x21, al
    cli
    hlt

handler:
    push eax
    push ebx
    mov ebx, [LOGPTR]
    mov eax, [esp+8]            ; EIP the interrupt or trap came at
    mov [ebx], eax
    mov eax, [esp+16]           ; its EFLAGS
    mov [ebx+4], eax
    add ebx, 8
    cmp ebx, LOGEND
    jb .ok
    mov ebx, LOG
.ok:
    mov [LOGPTR], ebx
    inc dword [COUNT]
    mov al, 0x20
    out 0x20, al
    pop ebx
    pop eax
    iret

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff       ; 0x08 flat code
        dq 0x00cf92000000ffff       ; 0x10 flat data
gdtr:   dw 23
        dd ROMSEG*16 + gdt
idtr:   dw 256*8 - 1
        dd IDT

times 0xfff0 - ($ - $$) db 0
bits 16
    jmp ROMSEG:start16
times 0x10000 - ($ - $$) db 0

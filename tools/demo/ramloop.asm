; tsvm test firmware (src/board/machine.test.ts): copies a two-instruction
; loop to RAM at 0x8000 and runs it there forever, adding 1 to the word at
; 0x600 each time round. Build: nasm -f bin ramloop.asm -o ramloop.bin
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov si, loop_code
    mov di, 0x8000
    mov cx, loop_end - loop_code
.copy:
    mov al, [cs:si]
    mov [es:di], al
    inc si
    inc di
    loop .copy
    jmp 0x0000:0x8000
loop_code:
    add word [0x600], 1        ; 83 06 00 06 01: the immediate is at 0x8004
    jmp short loop_code        ; relative: runs the same at 0x8000
loop_end:
    times 0xfff0 - ($ - $$) db 0
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0

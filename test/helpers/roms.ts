/**
 * Pieces of the small nasm ROM guests the CLI tests boot with `-bios`: 16-bit
 * real-mode code at F000:0, entered from the reset vector.
 */

/** COM1 set to 8 data bits, no parity, 1 stop bit at 115200 baud (LCR.DLAB, divisor 1, then LCR = 8N1). */
export const COM1_INIT_8N1 = `mov dx, 0x3fb
mov al, 0x83
out dx, al
mov dx, 0x3f8
mov al, 1
out dx, al
inc dx
xor al, al
out dx, al
mov dx, 0x3fb
mov al, 3
out dx, al`;

/** The end of every such ROM: pad to the reset vector at 0xFFF0, jump to `start`, pad to 64 KiB. */
export const ROM_TAIL = `times 0xfff0 - ($ - $$) db 0
jmp 0xf000:start
times 0x10000 - ($ - $$) db 0`;

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';

/**
 * A ROM guest for the graphics screen: it sets a 160x100 32-bit Bochs VBE
 * mode (banked, at A000:0), paints a gradient, enables the PS/2 mouse, says
 * "ready" on COM1, and then for every byte from the i8042 prints it in hex
 * on COM1 and paints a white 16x16 square in the next of ten places.
 */
const PAINT_ROM = `bits 16
org 0
start:
cli
xor ax, ax
mov ss, ax
mov sp, 0x7000
${COM1_INIT_8N1}
mov bx, 0
call dispi_off
mov bx, 1
mov cx, 160
call dispi
mov bx, 2
mov cx, 100
call dispi
mov bx, 3
mov cx, 32
call dispi
mov bx, 4
mov cx, 1
call dispi
mov ax, 0xa000
mov es, ax
xor di, di
xor bx, bx
row:
movzx eax, bl
shl eax, 1
or eax, 0x204000
mov cx, 160
rep stosd
inc bx
cmp bx, 100
jb row
call wait_in
mov al, 0xa8
out 0x64, al
call wait_in
mov al, 0xd4
out 0x64, al
call wait_in
mov al, 0xf4
out 0x60, al
mov al, 'r'
call putc
mov al, 'e'
call putc
mov al, 'a'
call putc
mov al, 'd'
call putc
mov al, 'y'
call putc
mov al, 10
call putc
xor si, si
poll:
in al, 0x64
test al, 1
jz poll
in al, 0x60
call hex
mov ax, si
xor dx, dx
mov cx, 10
div cx
shl dx, 6
mov di, 60*640
add di, dx
mov bx, 16
square:
mov cx, 16
mov eax, 0x00ffffff
push di
rep stosd
pop di
add di, 640
dec bx
jnz square
inc si
jmp poll
dispi_off:
mov cx, 0
mov bx, 4
dispi:
mov dx, 0x1ce
mov ax, bx
out dx, ax
inc dx
mov ax, cx
out dx, ax
ret
wait_in:
in al, 0x64
test al, 2
jnz wait_in
ret
hex:
push ax
shr al, 4
call nib
pop ax
push ax
and al, 15
call nib
mov al, ' '
call putc
pop ax
ret
nib:
add al, '0'
cmp al, '9'
jbe .out
add al, 7
.out:
call putc
ret
putc:
push ax
mov dx, 0x3fd
.wait:
in al, dx
test al, 0x20
jz .wait
pop ax
mov dx, 0x3f8
out dx, al
ret
${ROM_TAIL}
`;

/** Assemble the paint ROM into `dir`; returns its path. */
export function paintRom(dir: string): string {
  writeFileSync(join(dir, 'paint.asm'), PAINT_ROM);
  const r = spawnSync('nasm', ['-f', 'bin', join(dir, 'paint.asm'), '-o', join(dir, 'paint.rom')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nasm failed on the paint ROM: ${r.stderr}`);
  return join(dir, 'paint.rom');
}

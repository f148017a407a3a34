; Mode transitions and the segment descriptor caches: back to real mode from
; protected mode with data segments still holding protected-mode bases
; ("unreal" mode, as BIOSes and boot loaders use it), reloading them in real
; mode, LMSW (cannot clear PE), CR0.ET hardwired, 16-bit PM <-> 32-bit PM.
%include "lib/harness.inc"
TEST_BEGIN

; from 16-bit code in protected mode back to real mode (CS = 0xF000)
%macro PM16_TO_RM 0
  mov eax, cr0
  and eax, ~1
  mov cr0, eax
  jmp 0xF000:%%rm
%%rm:
  %xdefine MODE rm
  %xdefine MODESTR "rm"
%endmacro

  mov dword [0x100], 0x11111111       ; real-mode DS (0x1000): linear 0x10100
  push es
  push word 0x2000
  pop es
  mov dword [es:0x100], 0x22222222    ; linear 0x20100
  pop es
  push ds
  push word 0
  pop ds
  mov dword [0x0380], 0x33333333      ; linear 0x00380 = 0x28*16 + 0x100
  mov dword [0x0400], 0x44444444      ; linear 0x00400 = 0x30*16 + 0x100
  pop ds

  ; ---- PM: DS = scratch (base 0x10000), ES = scratch2 (base 0x20000), FS = flat
  ENTER_PM16
  SETSEG es, SCR2
  SETSEG fs, FLAT
  mov eax, [0x100]
  mov ebx, [es:0x100]
  mov ecx, [fs:dword 0xF0000]          ; ROM bytes through a 4G flat segment
  DUMP "pm16 reads"
  PM16_TO_RM
  ; still the protected-mode bases and limits (selector values are kept too)
  mov eax, [0x100]
  mov ebx, [es:0x100]
  mov ecx, [fs:dword 0xF0000]          ; offset > 0xFFFF: unreal mode
  mov edx, [fs:dword 0x20100]
  DUMP "rm with pm caches"
  ; reloading in real mode: base = selector * 16
  mov ax, ds
  mov ds, ax
  mov ax, es
  mov es, ax
  mov eax, [0x100]                     ; DS=0x28 -> linear 0x380
  mov ebx, [es:0x100]                  ; ES=0x30 -> linear 0x400
  DUMP "rm after reload"
  mov ax, 0x1000
  mov ds, ax
  mov ax, 0x2000
  mov es, ax
  xor ax, ax
  mov fs, ax
  mov eax, [0x100]
  mov ebx, [es:0x100]
  DUMP "rm normal"
  mov ax, 0x1000
  mov fs, ax
  mov gs, ax
  ; ---- segment register moves in real mode
  mov eax, 0xFFFFFFFF
  mov ebx, 0xFFFFFFFF
  mov eax, ds                          ; 32-bit destination: zero-extended (P6+)
  mov bx, es
  mov dword [0x60], 0xEEEEEEEE
  mov [0x60], ds                       ; memory: always 16 bits
  o32 mov [0x62], es                   ; still 16 bits
  mov ecx, [0x60]
  DUMP "mov r/m, sreg"
  mov word [0x70], 0x1234
  mov word [0x72], 0x2000
  les si, [0x70]
  lfs di, [0x70]
  mov dword [0x74], 0x00018000
  mov word [0x78], 0x0000
  lss esp, [0x74]
  mov edx, esp
  mov esp, STACK_TOP
  xor ax, ax
  mov ss, ax
  mov ax, [es:0x100]
  DUMP "les/lfs/lss in real mode"
  mov word [0x7A], 0x1000
  mov es, [0x7A]
  push word 0x2000
  pop fs
  push ds
  pop gs
  DUMP "mov/pop sreg in real mode"
  mov ax, 0x1000
  mov es, ax
  mov fs, ax
  mov gs, ax
  ; ---- real-mode interrupt table moved with LIDT
  push ds
  push word 0
  pop ds
  mov word [0x4000 + 0x41*4], rm_int41
  mov word [0x4000 + 0x41*4 + 2], 0xF000
  mov word [0x41*4], rm_int41_wrong
  mov word [0x41*4 + 2], 0xF000
  pop ds
  mov word [0x80], 0x3FF
  mov dword [0x82], 0x4000
  lidt [0x80]
  xor eax, eax
  int 0x41
  o32 lidt [cs:idtr_rm]
  DUMP "lidt in real mode"
  jmp rm_int41_end
rm_int41:
  mov eax, 0x41414141
  iret
rm_int41_wrong:
  mov eax, 0xBADBAD
  iret
rm_int41_end:
  ; ---- LMSW cannot clear PE; CR0.ET stays set
  ENTER_PM16
  smsw ax
  and ax, ~1
  lmsw ax
  mov eax, cr0
  DUMP "lmsw keeps PE"
  mov eax, cr0
  and eax, ~0x10
  mov cr0, eax
  mov ebx, cr0
  DUMP "cr0.et hardwired"
  ; ---- 16 -> 32 -> 16-bit protected mode code
  ENTER_PM32
  mov eax, 0x12345678
  push eax
  jmp SEL_CODE16:c16
BITS 16
%xdefine MODE p16
%xdefine MODESTR "p16"
c16:
  pop ebx
  mov cx, sp
  DUMP "back in 16-bit code"
  jmp dword SEL_CODE32:c32
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"
c32:
  DUMP "32-bit again"
TEST_END

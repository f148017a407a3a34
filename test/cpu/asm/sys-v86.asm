; Virtual-8086 mode (SDM vol. 3, chapter 20): entry by IRETD and by a task
; switch, real-mode addressing, INT n at IOPL 3 through the IDT to ring 0 (the
; frame with the segment registers, data segments nulled), exceptions out of
; v8086 mode, the TSS I/O bitmap, the IOPL-sensitive instructions (CLI STI
; PUSHF POPF INT n IRET raise #GP(0) at IOPL < 3; INT3 is not sensitive), and
; privileged instructions (#GP) / protected-mode-only ones (#UD).
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

SEL_TSSIO equ 0x100     ; the harness TSS with an I/O bitmap (limit 0x88)
SEL_D     equ 0x108     ; a TSS whose task runs in v8086 mode
TSS_D     equ 0x3200

%macro IDT_GATE 2       ; vector, handler: DPL3 32-bit interrupt gate to ring 0
  mov dword [ss:IDT_BASE+(%1)*8], (SEL_CODE32 << 16) | ((%2) - $$)
  mov dword [ss:IDT_BASE+(%1)*8+4], 0xEE00
%endmacro

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  GDESC TSS_BASE, 0x88, 0x89, 0      ; 0x100
  GDESC TSS_D, 0x88, 0x89, 0         ; 0x108
sys_gdt_extra_end:
; ports 0x00-0xFF: all trapped except 0x80, 0xE9 (dumps) and 0xF4 (exit)
iobitmap:
  times 16 db 0xFF
  db 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF   ; 0x80-0xBF
  db 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD, 0xEF, 0xFF   ; 0xC0-0xFF: 0xE9, 0xF4 clear
  db 0xFF
tss_d_img: TSS32 v86_task-$$, 0x23002, 0xD0D0D0D0, 0x5800, 0xF000, 0, SCRATCH>>4, SCRATCH>>4, 0, 0, 0, 0

; ring-0 handlers for interrupts from v8086 mode
h_frame:                          ; INT 0x42: show the frame, return
  DUMP "r0: int 0x42 from v86"
  DUMPMEM "v86 frame", R0_STACK-36, 36
  iretd
h_iopl0:                          ; INT 0x43: return with IOPL 0
  and dword [esp+8], ~0x3000
  iretd
h_iopl3:                          ; INT3: return with IOPL 3
  or dword [esp+8], 0x3000
  iretd
h_leave:                          ; INT 0x45: leave v8086 mode for good
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP
  mov ax, SEL_SCR
  mov ds, ax
  mov es, ax
  jmp pm_again

BITS 16
%xdefine MODE v86
%xdefine MODESTR "v86"
v86_entry:
  DUMP "entered by iretd"
  mov ax, ds
  mov [0x10], ax                ; DS base is 0x10000
  mov bx, 0x1234
  mov ds, bx
  mov es, bx
  DUMP "segment loads"
  mov ax, SCRATCH >> 4
  mov ds, ax
  mov es, ax
  cli
  sti
  cli
  pushf
  pop ax
  or ax, 0x0400
  push ax
  popf                          ; DF set, IOPL unchanged
  cld
  DUMP "cli sti pushf popf at iopl 3"
  pushfd
  pop eax
  DUMP "pushfd"
  int 0x42
  DUMP "back from int 0x42"
  TRY "int 0x40 (gate DPL0)", int 0x40
  TRY "ud2", ud2
  TRY "div 0", div byte [0x20]
  TRY "out 0x80", out 0x80, al
  TRY "out 0x81", out 0x81, al
  TRY "out 0x80 word", out 0x80, ax
  mov dx, 0x100
  TRY "out dx=0x100", out dx, al
  TRY "hlt", hlt
  TRY "mov cr0", mov eax, cr0
  TRY "lgdt", lgdt [0]
  TRY "sldt", sldt ax
  TRY "arpl", arpl [0], ax
  TRY "lar", lar ax, bx
  TRY "sysexit", sysexit
  ; IOPL 0: the sensitive instructions fault (no dumps here: dumps use PUSHFD)
  int 0x43
  EXPECT .c1
  cli
.c1:
  EXPECT .c2
  sti
.c2:
  EXPECT .c3
  pushf
.c3:
  EXPECT .c4
  popf
.c4:
  EXPECT .c5
  int 0x42
.c5:
  EXPECT .c6
  iret
.c6:
  EXPECT .c7
  out 0x81, al
.c7:
  out 0x80, al                  ; allowed by the bitmap whatever IOPL is
  int3                          ; not IOPL-sensitive: back to IOPL 3
  DUMP "iopl 3 again"
  int 0x45

v86_task:
  DUMP "v86 task"
  int 0x46                      ; task gate back to task A
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"

code_start:
  call sys_init
  mov esi, iobitmap
  mov edi, TSS_BASE + 0x68
  mov ecx, 33
  call sys_copy
  mov ax, SEL_TSSIO
  ltr ax
  IDT_GATE 0x42, h_frame
  IDT_GATE 0x43, h_iopl0
  IDT_GATE 3, h_iopl3
  IDT_GATE 0x45, h_leave
  push dword 0                  ; gs
  push dword 0                  ; fs
  push dword SCRATCH >> 4       ; ds
  push dword SCRATCH >> 4       ; es
  push dword 0                  ; ss
  push dword 0x6000             ; esp
  push dword 0x23002            ; VM, IOPL 3
  push dword 0xF000
  push dword v86_entry
  iretd

pm_again:
  DUMP "back in protected mode"
  ; a task switch into v8086 mode (JMP; the task comes back by INT 0x46)
  mov esi, tss_d_img
  mov edi, TSS_D
  mov ecx, 0x68
  call sys_copy
  mov esi, iobitmap
  mov edi, TSS_D + 0x68
  mov ecx, 33
  call sys_copy
  mov dword [ss:IDT_BASE+0x46*8], SEL_TSSIO << 16
  mov dword [ss:IDT_BASE+0x46*8+4], 0xE500
  jmp SEL_D:0
  pushfd
  and dword [esp], ~0x4000      ; NT: the INT set it
  popfd
  DUMP "back from the v86 task"
  DUMPMEM "D saved", TSS_D, 0x68
  TEST_END

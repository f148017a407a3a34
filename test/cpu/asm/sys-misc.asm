; ARPL (#UD in real mode), SYSENTER/SYSEXIT (flat segments from
; IA32_SYSENTER_CS, #GP cases), LAR/LSL/VERR/VERW over every kind of
; descriptor, SLDT/STR/SGDT/SIDT/SMSW/LMSW.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB
ROMLIN equ 0xF0000

  TRY "rm: arpl", arpl ax, bx
  TRY "rm: sysenter", sysenter
  TRY "rm: lar", lar ax, bx
  smsw ax
  DUMP "rm: smsw"

ENTER_PM32
  jmp misc_go
sys_gdt_extra:
  GDESC 0, 0xFFFFF, 0x9E, 0xC     ; 0x100 conforming code DPL0
  GDESC 0, 0xFFFFF, 0xE0, 0xC     ; 0x108 read-only data DPL3
sys_gdt_extra_end:
misc_go:
  call sys_init
  ; ARPL
  mov ax, 0x10
  mov bx, 0x13
  arpl ax, bx
  DUMP "arpl raise"
  mov ax, 0x13
  mov bx, 0x11
  arpl ax, bx
  DUMP "arpl keep"
  mov word [0x30], 0x61
  arpl [0x30], bx
  mov ax, [0x30]
  DUMP "arpl mem"

  ; descriptor queries over the harness GDT (plus a few odd selectors)
%assign s 0
%rep 35
  mov ecx, 0x11111111
  mov edx, 0x22222222
  mov ax, s
  lar ecx, ax
  setz bl
  lsl edx, ax
  setz bh
  verr ax
  setz byte [0x40]
  verw ax
  setz byte [0x41]
  mov esi, [0x40]
  DUMP "lar/lsl/verr/verw"
%assign s s + 8
%endrep
  mov ax, 0x800
  lar ecx, ax
  DUMP "lar beyond limit"
  mov ax, 0x7B
  lar cx, ax
  lsl dx, ax
  DUMP "lar/lsl 16-bit, RPL3 TSS"

  ; table registers
  sgdt [0x50]
  sidt [0x58]
  o16 sgdt [0x60]
  str ax
  sldt bx
  smsw ecx
  mov edx, cr0
  DUMP "str sldt smsw"
  DUMPMEM "sgdt sidt", SCRATCH+0x50, 0x18
  mov ax, 0x000A                ; LMSW: MP and TS on, PE cannot be cleared
  lmsw ax
  smsw eax
  clts
  DUMP "lmsw"

  ; SYSENTER / SYSEXIT
  pushfd
  or dword [esp], 0x3000        ; IOPL 3: ring 3 can still write the dumps
  popfd
  mov ax, SEL_DPL3D
  mov ds, ax
  TRY "sysexit, MSR 0", sysexit
  TRY "sysenter, MSR 0", sysenter
  xor edx, edx
  mov ecx, 0x174
  mov eax, SEL_CODE32
  wrmsr
  mov ecx, 0x175
  mov eax, 0x7000
  wrmsr
  mov ecx, 0x176
  mov eax, ROMLIN + in_r0
  wrmsr
  mov ecx, 0x5000
  mov edx, ROMLIN + in_r3
  sysexit
in_r3:
  DUMP "ring 3 after sysexit"
  mov ebp, 0x55
  sysenter
in_r0:
  DUMP "ring 0 after sysenter"
  jmp SEL_CODE32:back
back:
  mov ax, SEL_SCR
  mov ds, ax
  DUMP "end"
  TEST_END

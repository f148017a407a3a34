; VME/PVI cases where QEMU (7.2, TCG) departs from the SDM and tsvm follows
; the SDM. Not part of the default run; run with
;   node dist/test/cpu/harness.js qemu-diff/sys-vme-diff
; Every mismatch it prints is expected; docs/cpu-qemu-differences.md explains.
; (QEMU ignores CR4.VME/PVI altogether: test/cpu/asm/sys-vme.asm compares
; tsvm with a software VME that the ROM runs on QEMU.)
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  dq 0
sys_gdt_extra_end:
h_leave:
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP
  mov ax, SEL_SCR
  mov ds, ax
  jmp back
code_start:
  call sys_init
  mov dword [ss:IDT_BASE+0x45*8], (SEL_CODE32 << 16) | (h_leave - $$)
  mov dword [ss:IDT_BASE+0x45*8+4], 0xEE00
  ; IRETD at CPL 0 loads VIF and VIP (SDM IRET: "IF CPL = 0 ... EFLAGS(VIF, VIP)
  ; := tempEFLAGS"); QEMU leaves them
  pushfd
  or dword [esp], 0x180000
  push cs
  push dword .same
  iretd
.same:
  DUMP "iretd at cpl 0 with VIF VIP (SDM: set; QEMU: clear)"
  pushfd
  and dword [esp], ~0x180000
  push cs
  push dword .clr
  iretd
.clr:
  ; the same on a return to CPL 3
  push dword SEL_STK3
  push dword R3_STACK
  push dword 0x83002
  push dword SEL_CODE3
  push dword .cpl3
  iretd
.cpl3:
  DUMP "iretd to cpl 3 with VIF (SDM: set; QEMU: clear)"
  int 0x45
back:
  DUMP "back"
  TEST_END

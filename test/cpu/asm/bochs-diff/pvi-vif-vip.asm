; A case where Bochs (2.7) departs from the SDM and tsvm follows the SDM.
; Not part of the QEMU differential run (the harness lists only
; test/cpu/asm/*.asm); test/cpu/bochs.test.ts runs it on tsvm and Bochs and
; expects exactly the difference below; docs/cpu-qemu-differences.md explains.
;
; CR4.PVI = 1, IOPL 0: an IRETD from CPL 0 returns to CPL 3 with VIF and VIP
; both set.  The SDM's IRET loads VIF and VIP at CPL 0 and nothing checks them
; until the CPL 3 code executes STI (#GP when VIP = 1): the code runs.  Bochs
; checks "VIF and VIP set at CPL 3" when it fetches code (cpu/cpu.cc,
; prefetch: "inconsistent VME state") and raises #GP(0) at the first
; instruction.  (QEMU ignores PVI: no fault, as in tsvm.)
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
  mov eax, cr4
  or eax, 2                             ; PVI
  mov cr4, eax
  push dword SEL_STK3
  push dword R3_STACK
  push dword 0x180002                   ; VIP, VIF, IOPL 0, IF 0
  push dword SEL_CODE3
  push dword .cpl3
  iretd
.cpl3:                                  ; (no DUMP here: port 0xE9 needs IOPL 3)
  mov ebx, 0x1234
  int 0x45
back:
  xor eax, eax
  mov cr4, eax
  DUMP "back from cpl3 with VIF VIP (SDM: EBX=0x1234; Bochs: #GP at the first fetch)", ~0x180000  ; (QEMU does not load VIF VIP)
  TEST_END

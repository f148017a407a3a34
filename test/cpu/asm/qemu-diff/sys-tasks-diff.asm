; Task-switch cases where QEMU (7.2, TCG) departs from the SDM and tsvm
; follows the SDM (docs/cpu-qemu-differences.md, the "task switch" and "TSS T
; bit" rows): test/cpu/bochs.test.ts compares tsvm with Bochs on them.
; Against QEMU (by hand) every mismatch is expected.
;   node dist/test/cpu/harness.js --bochs qemu-diff/sys-tasks-diff
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

TSS_B equ 0x3100
TSS_C equ 0x3200
TSS_D equ 0x3300
TSS_E equ 0x3400

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  GDESC TSS_B, 0x67, 0x89, 0            ; 0x100 TSS B: T bit set
  GDESC 0xF0000, 0xFFFF, 0x9E, 0x4      ; 0x108 conforming code, DPL 0
  GDESC TSS_C, 0x67, 0x89, 0            ; 0x110 TSS C: CS = 0x10B (RPL 3)
  GDESC 0xF0000, 0xFFFF, 0x9A, 0x4      ; 0x118 code32, accessed bit clear
  GDESC 0, 0xFFFFF, 0x92, 0xC           ; 0x120 flat data, accessed bit clear
  GDESC TSS_D, 0x67, 0x89, 0            ; 0x128 TSS D: ES not present (not DS: the
                                        ; harness's handler reloads DS)
  GDESC SCRATCH, 0xFFFFF, 0x92, 0xC     ; 0x130 scratch data, accessed bit clear
  GDESC TSS_E, 0x67, 0x89, 0            ; 0x138 TSS E: CS SS DS with the accessed bit clear
sys_gdt_extra_end:

tss_b_img: TSS32 task_b-$$, 0x2, 0xB0B0B0B0, 0x7000, SEL_CODE32, SEL_FLAT, SEL_SCR, SEL_SCR, 0, 0, 0, 1
tss_c_img: TSS32 task_c-$$, 0x3002, 0xC0C0C0C0, R3_STACK, 0x10B, SEL_STK3, SEL_DPL3D, SEL_DPL3D, 0, 0, 0, 0
tss_d_img: TSS32 task_d-$$, 0x2, 0xD0D0D0D0, 0x7000, SEL_CODE32, SEL_FLAT, SEL_SCR, SEL_NP, 0, 0, 0, 0
tss_e_img: TSS32 task_e-$$, 0x2, 0xE0E0E0E0, 0x7000, 0x118, 0x120, 0x130, SEL_SCR, 0, 0, 0, 0

task_b:
  DUMP "b: first instruction ran without the T-bit #DB (bug)"
b_cont:
  mov eax, dr6
  DUMP "b: #DB with DR6.BT before the first instruction (QEMU: none)"
  xor eax, eax
  mov dr6, eax
  iretd
task_c:
  mov ebx, cs
  DUMP "c: conforming CS with DPL 0 < RPL 3 loads, CPL 3 (QEMU: #TS)"
  iretd
task_d:
  DUMP "d: ES not present, no fault (bug)"
d_cont:
  mov ax, SEL_SCR
  mov ds, ax
  mov es, ax
  DUMP "d: #NP(ES) in the new task at its first instruction (QEMU: in the old task)"
  iretd
task_e:
  DUMPMEM "e: accessed bits of the new CS SS DS set (QEMU: clear)", GDT_BASE+0x118, 0x20
  iretd

code_start:
  call sys_init
  mov esi, tss_b_img
  mov edi, TSS_B
  mov ecx, 0x68
  call sys_copy
  mov esi, tss_c_img
  mov edi, TSS_C
  mov ecx, 0x68
  call sys_copy
  mov esi, tss_d_img
  mov edi, TSS_D
  mov ecx, 0x68
  call sys_copy
  mov esi, tss_e_img
  mov edi, TSS_E
  mov ecx, 0x68
  call sys_copy

  EXPECT b_cont
  call 0x100:0
  mov dword [ss:V_CONT], 0
  DUMP "a: back from b"
  TRY "a: back from c", call 0x110:0
  EXPECT d_cont
  call 0x128:0
  mov dword [ss:V_CONT], 0
  DUMP "a: back from d"
  call 0x138:0
  clts
  DUMP "a: back from e"
  TEST_END

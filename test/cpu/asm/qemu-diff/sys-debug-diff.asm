; Debug traps around stack switches and implicit accesses, where QEMU (7.2,
; TCG) departs from the SDM and tsvm follows it (Bochs is the reference:
; test/cpu/bochs.test.ts):
;  - MOV SS / POP SS hold back their debug traps (data breakpoints, single
;    step) until after the next instruction, and the next instruction's own
;    traps come in the same #DB (SDM vol. 3, 6.8.3); an instruction
;    breakpoint on that next instruction is not taken;
;  - descriptor-table reads (a segment load, an IDT gate) hit data breakpoints;
;  - faults push RF=1 (the bochs comparison includes RF in frames).
;   node dist/test/cpu/harness.js --bochs qemu-diff/sys-debug-diff
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  dq 0
sys_gdt_extra_end:
h_db:                                   ; EAX = DR6, EBX = EIP, EDX = EFLAGS of the frame
  pushad
  mov eax, dr6
  mov ebx, [esp+32]
  mov edx, [esp+40]
  DUMP "#DB"
  xor eax, eax
  mov dr6, eax
  or dword [esp+40], 0x10000            ; RF: return past an instruction breakpoint
  popad
  iretd
h_41:
  DUMP "int 0x41 handler"
  iretd

%macro DR7SET 1
  mov eax, %1
  mov dr7, eax
%endmacro

code_start:
  call sys_init
  mov dword [ss:IDT_BASE+1*8], (SEL_CODE32 << 16) | (h_db - $$)
  mov dword [ss:IDT_BASE+1*8+4], 0x8E00
  mov dword [ss:IDT_BASE+0x41*8], (SEL_CODE32 << 16) | (h_41 - $$)
  mov dword [ss:IDT_BASE+0x41*8+4], 0x8E00
  xor ecx, ecx

  ; ---- POP SS reading a watched stack slot: the #DB comes after the next instruction
  mov esp, 0x7F00                       ; (away from where the #DB frame goes)
  push dword SEL_FLAT
  mov eax, esp
  mov dr0, eax
  DR7SET 0x000F0002                     ; G0, read/write, 4 bytes
  pop ss
  mov esp, STACK_TOP                    ; (the trap is reported after this one)
  nop
  DR7SET 0
  DUMP "pop ss: data breakpoint after the next instruction"

  ; ---- MOV SS from a watched word and a watched write by the next instruction: one #DB
  mov word [0x200], SEL_FLAT
  mov eax, SCRATCH+0x200
  mov dr0, eax
  mov eax, SCRATCH+0x300
  mov dr1, eax
  DR7SET 0x0017000A                     ; G0 read/write 2 bytes, G1 write 1 byte
  mov ss, [0x200]
  mov byte [0x300], 2
  nop
  DR7SET 0
  DUMP "mov ss: two breakpoints in one #DB"

  ; ---- TF and POP SS with a watched slot: one #DB with B0 and BS, after the next instruction
  mov esp, 0x7F00
  push dword SEL_FLAT
  mov eax, esp
  mov dr0, eax
  DR7SET 0x000F0002
  pushfd
  or dword [esp], 0x100
  popfd
  pop ss
  mov esp, STACK_TOP
  pushfd
  and dword [esp], ~0x100
  popfd
  DR7SET 0
  DUMP "pop ss with tf"

  ; ---- an instruction breakpoint on the instruction after MOV SS is not taken
  mov eax, 0xF0000 + (.after - $$)
  mov dr0, eax
  mov eax, 0xF0000 + (.later - $$)
  mov dr1, eax
  DR7SET 0x0000000A                     ; G0, G1: execute
  mov ax, ss
  mov ss, ax
.after:
  mov ecx, 4
.later:
  mov ecx, 5                            ; (this one's breakpoint is taken)
  DR7SET 0
  DUMP "instruction breakpoint after mov ss"

  ; ---- implicit accesses: the GDT read of a segment load, the IDT read of INT n
  mov eax, GDT_BASE + SEL_SCR2
  mov dr2, eax
  DR7SET 0x0F000020                     ; G2, read/write, 4 bytes
  mov ax, SEL_SCR2
  mov fs, ax
  mov ecx, 6
  DR7SET 0
  DUMP "gdt read by mov fs"
  mov eax, IDT_BASE + 0x41*8 + 4
  mov dr3, eax
  DR7SET 0xF0000080                     ; G3, read/write, 4 bytes
  int 0x41
  mov ecx, 7
  DR7SET 0
  DUMP "idt read by int 0x41"

  ; ---- a fault pushes RF=1 (compared with Bochs)
  mov ax, SEL_RO
  mov fs, ax
  TRY "write to read-only fs: #GP frame with RF", mov [fs:0], al
  SETSEG fs, SCR
  TEST_END

; Call gates (SDM vol. 3, 5.8.3-5.8.6): CALL/JMP through 32- and 16-bit gates
; at the same privilege and to an inner ring (stack switch from the TSS,
; parameter copy of the gate's count), RET far back to the
; outer ring (data segments nulled), and the faults with their error codes:
; gate DPL, not-present gate/target, bad target, null target, JMP to an inner
; ring, bad SS in the TSS (#TS), bad SS/CS on RET far.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

ENTER_PM32
  jmp gdt_done
sys_gdt_extra:
  GATE SEL_CODE32, g_r0-$$,  0xEC, 0         ; 0x100 32-bit gate, DPL3 -> ring 0
  GATE SEL_CODE32, g_p32-$$, 0xEC, 3         ; 0x108 32-bit gate, 3 params
  GATE SEL_CODE16, g_16-$$,  0xE4, 2         ; 0x110 16-bit gate, 2 params
  GATE SEL_CODE32, g_r0-$$,  0x8C, 0         ; 0x118 gate DPL0
  GATE SEL_CODE32, g_r0-$$,  0x6C, 0         ; 0x120 gate not present
  GATE SEL_FLAT,   0,     0xEC, 0         ; 0x128 target is data
  GATE 0,          0,     0xEC, 0         ; 0x130 null target
  GATE 0x180,      0,     0xEC, 0         ; 0x138 target not present
  GATE SEL_CODE3,  g_same-$$,0xEC, 0         ; 0x140 ring 3 -> ring 3
  GDESC 0xF0000, 0xFFFF,  0xBA, 0x4       ; 0x148 ring-1 code32
  GDESC 0,       0xFFFFF, 0xB2, 0xC       ; 0x150 ring-1 stack
  GATE 0x149,      g_r1-$$,  0xEC, 1         ; 0x158 -> ring 1, 1 param
  GDESC 0,       0xFFFFF, 0xB0, 0xC       ; 0x160 ring-1 read-only data
  GDESC 0,       0xFFFFF, 0x32, 0xC       ; 0x168 ring-1 data, not present
  dq 0                                   ; 0x170 (conforming: see qemu-diff/sys-gates-diff.asm)
  dq 0                                   ; 0x178
  GDESC 0xF0000, 0xFFFF,  0x1A, 0x4       ; 0x180 code not present
  GATE SEL_CODE32, g_badret-$$, 0xEC, 0      ; 0x188 -> RET far fault tests
  GATE SEL_CODE32, 0xFFFFF0, 0xEC, 0      ; 0x190 offset beyond the limit
  GATE SEL_CODE32, g_r0-$$, 0xE2, 0          ; 0x198 an LDT descriptor: not a valid far target
  GATE SEL_CODE32, g_finish-$$, 0xEC, 0   ; 0x1A0 back to ring 0 for the end
sys_gdt_extra_end:

; ---------------------------------------------------------------- handlers
g_r0:
  DUMP "g_r0"
  cmp edi, 0x4A4D50          ; 'JMP': came by a jump
  jne .ret
  xor edi, edi
  jmp r0_after_jmp
.ret:
  test byte [esp+4], 3
  jz .same
  DUMPMEM "g_r0 frame", R0_STACK-16, 16
  mov ax, SEL_SCR            ; a DPL0 data segment: nulled by the return to ring 3
  mov es, ax
.same:
  retf

g_p32:
  DUMP "g_p32"
  DUMPMEM "g_p32 frame", R0_STACK-28, 28
  retf 12

g_r1:
  mov eax, [esp]
  mov ebx, [esp+4]
  mov ecx, [esp+8]
  mov edx, [esp+12]
  mov esi, [esp+16]
  DUMP "g_r1"
  retf 4

g_same:
  DUMP "g_same"
  cmp edi, 0x4A4D50
  jne .call
  xor edi, edi
  jmp r3_same_back
.call:
  jmp r3_same_back2

g_badret:
  mov eax, [esp+12]
  mov dword [esp+12], 0
  TRY "retf null SS", retf
  mov dword [esp+12], 0x62
  TRY "retf SS RPL2", retf
  mov dword [esp+12], 0x6B
  TRY "retf SS code", retf
  mov dword [esp+12], SEL_DPL3D & ~3 | 3
  mov dword [esp+12], 0x13
  TRY "retf SS DPL0", retf
  mov dword [esp+12], eax
  mov dword [esp+8], 0x5FF0
  retf

BITS 16
%xdefine MODE p16
%xdefine MODESTR "p16"
g_16:
  DUMP "g_16"
  DUMPMEM "g_16 frame", R0_STACK-12, 12
  retf 4
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"

gdt_done:
  call sys_init
  mov dword [ss:TSS_BASE+0x0C], R1_STACK
  mov dword [ss:TSS_BASE+0x10], 0x151

  ; ring 0 through a DPL3 gate to ring 0: no stack switch
  mov eax, 0x1234
  call 0x100:0
  DUMP "r0: gate to r0"
  ; JMP through a gate at the same privilege
  mov edi, 0x4A4D50
  jmp 0x100:0
  ; (g_r0 returns with retf: for the jump test we come back with jmp)
r0_after_jmp:
  DUMP "r0: after jmp gate"

  TO_RING3 r3
r3:
  mov ax, SEL_DPL3D
  mov ds, ax
  mov es, ax
  DUMP "r3: entered"
  call 0x100:0
  DUMP "r3: back from r0 gate"
  push dword 0x11111111
  push dword 0x22222222
  push dword 0x33333333
  call 0x10B:0
  DUMP "r3: back from 3-param gate"
  push word 0xAAAA
  push word 0xBBBB
  call 0x110:0
  DUMP "r3: back from 16-bit gate"
  push dword 0x44444444
  call 0x158:0
  DUMP "r3: back from ring-1 gate"
  mov edi, 0x4A4D50
  jmp 0x140:0
r3_same_back:
  DUMP "r3: back from same-ring jmp gate"
  call 0x140:0
r3_same_back2:
  DUMP "r3: back from same-ring call gate"
  add esp, 8

  TRY "gate DPL0", call 0x118:0
  TRY "gate not present", call 0x120:0
  TRY "target is data", call 0x128:0
  TRY "null target", call 0x130:0
  TRY "target not present", call 0x138:0
  TRY "jmp gate to ring 0", jmp 0x100:0
  TRY "beyond GDT limit", call 0x800:0
  TRY "LDT selector, no LDT", call 0x104:0
  TRY "LDT descriptor as target", call 0x19B:0
  TRY "gate selector RPL3", call 0x15B:0

  ; bad ring-1 stacks in the TSS
  mov dword [ss:TSS_BASE+0x10], 0
  TRY "TSS SS1 null", call 0x158:0
  mov dword [ss:TSS_BASE+0x10], 0x150
  TRY "TSS SS1 RPL0", call 0x158:0
  mov dword [ss:TSS_BASE+0x10], 0x161
  TRY "TSS SS1 read-only", call 0x158:0
  mov dword [ss:TSS_BASE+0x10], 0x11
  TRY "TSS SS1 DPL0", call 0x158:0
  mov dword [ss:TSS_BASE+0x10], 0x149
  TRY "TSS SS1 code", call 0x158:0
  mov dword [ss:TSS_BASE+0x10], 0x151

  ; RET far to an inner ring
  push dword SEL_CODE32
  push dword r3
  TRY "retf to ring 0", retf
  add esp, 8
  call 0x188:0
  DUMP "r3: back from retf tests"
  call 0x1A0:0
g_finish:
  TEST_END


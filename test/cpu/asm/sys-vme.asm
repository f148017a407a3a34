; Virtual-8086 mode extensions and protected-mode virtual interrupts (SDM
; vol. 3, 20.3-20.4): CR4.VME in v8086 mode at IOPL 0 (CLI/STI on VIF, PUSHF
; showing VIF as IF and IOPL as 3, POPF/IRET loading VIF from IF, #GP for TF
; or for IF with VIP set, STI with VIP set, 32-bit PUSHFD/POPFD/IRETD), INT n
; by the interrupt redirection bitmap (clear bit: the 8086 vector table, with
; the virtual FLAGS image; set bit: #GP at IOPL 0, the IDT at IOPL 3), and
; CR4.PVI at CPL 3 (CLI/STI on VIF, STI with VIP set, POPFD unaffected).
;
; QEMU 7.2 (TCG) accepts CR4.VME/PVI but does not implement them (its CPUID
; does not report VME). So that the two streams can still be compared, the
; ROM carries a software VME: when CPUID.1 EDX bit 1 is clear, the #GP
; handler below does what the SDM says the processor does (vm_* routines)
; and returns, and only the faults the SDM keeps reach the harness's #GP
; stub. On tsvm, which reports VME, every #GP is a real one: an instruction
; that faults where the SDM says it must not shows as an extra X record.
; The handlers that look at frames also keep QEMU's lost VIF/VIP at CPL 3
; (QEMU's IRETD to CPL 3 does not load them) in V_SVF.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

SEL_TSSV  equ 0x100     ; TSS with the redirection bitmap and the I/O bitmap
V_HWVME   equ 0x580     ; 1 when the CPU reports VME
V_SVF     equ 0x584     ; VIF|VIP of CPL 3 code when the ROM emulates PVI
V_LEAVE   equ 0x588     ; where INT 0x45 continues in ring 0
F_VIF     equ 0x80000
F_VIP     equ 0x100000
M_NOVF    equ ~(F_VIF | F_VIP)   ; ring-0 and CPL-3 dumps: VIF/VIP are shown by the frames
REDIR     equ 0x68      ; redirection bitmap offset in the TSS (I/O map base - 32)
IOMAP     equ 0x88

%macro IDT_GATE 3       ; vector, handler, access: 32-bit interrupt gate to ring 0
  mov dword [ss:IDT_BASE+(%1)*8], (SEL_CODE32 << 16) | ((%2) - $$)
  mov dword [ss:IDT_BASE+(%1)*8+4], (%3) << 8
%endmacro

; OBS: INT3 to ring 0, which dumps the registers and the interrupted frame
%macro OBS 0
  xor ecx, ecx
  xor edx, edx
  int3
%endmacro
; SETVF clear, set: INT3 that also changes the interrupted EFLAGS
%macro SETVF 2
  mov ecx, %1
  mov edx, %2
  int3
%endmacro

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  GDESC TSS_BASE, IOMAP + 32, 0x89, 0   ; 0x100
sys_gdt_extra_end:
; ports 0x00-0xFF: all trapped except 0x80, 0xE9 (dumps) and 0xF4 (exit)
iobitmap:
  times 16 db 0xFF
  db 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF   ; 0x80-0xBF
  db 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD, 0xEF, 0xFF   ; 0xC0-0xFF: 0xE9, 0xF4 clear
  db 0xFF

; ---------------------------------------------------------------- software VME
; Routines on an interrupted frame at [ebx]: eip, cs, eflags, esp, ss (v8086).

; eax := the FLAGS image INT n / PUSHF show: the low word at IOPL 3; at
; IOPL < 3 with IOPL 3 and VIF in IF's place
vm_image:
  mov eax, [ss:ebx+8]
  mov edx, eax
  and edx, 0x3000
  cmp edx, 0x3000
  je .r
  mov edx, eax
  and eax, ~0x200
  or eax, 0x3000
  test edx, F_VIF
  jz .r
  or eax, 0x200
.r:
  movzx eax, ax
  ret
; push ax on the interrupted v8086 stack
vm_push16:
  push edi
  push ecx
  sub word [ss:ebx+12], 2
  movzx edi, word [ss:ebx+16]
  shl edi, 4
  movzx ecx, word [ss:ebx+12]
  add edi, ecx
  mov [ss:edi], ax
  pop ecx
  pop edi
  ret
; eax := the word at SS:SP+ecx of the interrupted v8086 code
vm_peek16:
  push edi
  push edx
  movzx edi, word [ss:ebx+16]
  shl edi, 4
  movzx edx, word [ss:ebx+12]
  add edx, ecx
  and edx, 0xFFFF
  movzx eax, word [ss:edi+edx]
  pop edx
  pop edi
  ret
; FLAGS image ax popped by POPF/IRET at IOPL < 3: CF=1 (nothing changed) when
; it must #GP (TF set, or IF set while VIP); else the flags but IF and IOPL,
; and VIF := IF
vm_loadflags:
  test eax, 0x100
  jnz .gp
  test eax, 0x200
  jz .ok
  test dword [ss:ebx+8], F_VIP
  jnz .gp
.ok:
  mov edx, [ss:ebx+8]
  and edx, ~(0x4DD5 | F_VIF)
  push eax
  and eax, 0x4DD5
  or edx, eax
  pop eax
  test eax, 0x200
  jz .s
  or edx, F_VIF
.s:
  mov [ss:ebx+8], edx
  clc
  ret
.gp:
  stc
  ret
; INT ecx redirected to the 8086 vector table (the frame's EIP is the return address)
vm_redirect:
  call vm_image
  call vm_push16
  mov ax, [ss:ebx+4]
  call vm_push16
  mov ax, [ss:ebx]
  call vm_push16
  mov eax, [ss:ebx+8]
  mov edx, eax
  and edx, 0x3000
  cmp edx, 0x3000
  je .iopl3
  and eax, ~(F_VIF | 0x10100)          ; VIF TF RF
  jmp .f
.iopl3:
  and eax, ~(0x200 | 0x10100)          ; IF TF RF
.f:
  mov [ss:ebx+8], eax
  movzx eax, word [ss:ecx*4]
  mov [ss:ebx], eax
  movzx eax, word [ss:ecx*4+2]
  mov [ss:ebx+4], eax
  ret
; CPL-3 protected-mode frames on a CPU without VME: VIF/VIP live in V_SVF
pvi_in:
  push eax
  cmp dword [ss:V_HWVME], 0
  jne .r
  test dword [ss:ebx+8], 0x20000
  jnz .r
  test byte [ss:ebx+4], 3
  jz .r
  mov eax, [ss:ebx+8]
  and eax, M_NOVF
  or eax, [ss:V_SVF]
  mov [ss:ebx+8], eax
.r:
  pop eax
  ret
pvi_out:
  push eax
  cmp dword [ss:V_HWVME], 0
  jne .r
  test dword [ss:ebx+8], 0x20000
  jnz .r
  test byte [ss:ebx+4], 3
  jz .r
  mov eax, [ss:ebx+8]
  and eax, F_VIF | F_VIP
  mov [ss:V_SVF], eax
.r:
  pop eax
  ret

; #GP: on a CPU without VME, do what VME/PVI would have done
h_gp:
  cmp dword [ss:V_HWVME], 0
  jne .real
  cmp dword [esp], 0
  jne .real
  pushad
  lea ebx, [esp+36]
  mov eax, [ss:ebx+8]
  and eax, 0x3000
  cmp eax, 0x3000
  je .realpop                           ; IOPL 3: nothing to emulate
  mov eax, cr4
  test dword [ss:ebx+8], 0x20000
  jz .pm
  test al, 1                            ; CR4.VME
  jz .realpop
  movzx esi, word [ss:ebx+4]
  shl esi, 4
  add esi, [ss:ebx]
  movzx eax, byte [ss:esi]
  cmp al, 0xFA
  je .cli
  cmp al, 0xFB
  je .sti
  cmp al, 0x9C
  je .pushf
  cmp al, 0x9D
  je .popf
  cmp al, 0xCD
  je .int
  cmp al, 0xCF
  je .iret
  jmp .realpop
.cli:
  and dword [ss:ebx+8], ~F_VIF
  jmp .next1
.sti:
  test dword [ss:ebx+8], F_VIP
  jnz .realpop
  or dword [ss:ebx+8], F_VIF
  jmp .next1
.pushf:
  call vm_image
  call vm_push16
  jmp .next1
.popf:
  xor ecx, ecx
  call vm_peek16
  call vm_loadflags
  jc .realpop
  add word [ss:ebx+12], 2
  jmp .next1
.int:
  movzx ecx, byte [ss:esi+1]
  movzx edi, word [ss:TSS_BASE+0x66]
  mov eax, ecx
  shr eax, 3
  add edi, eax
  movzx eax, byte [ss:TSS_BASE+edi-32]
  mov edx, ecx
  and edx, 7
  bt eax, edx
  jc .realpop                           ; set bit at IOPL < 3: #GP
  add dword [ss:ebx], 2
  call vm_redirect
  jmp .done
.iret:
  mov ecx, 4
  call vm_peek16
  call vm_loadflags
  jc .realpop
  xor ecx, ecx
  call vm_peek16
  mov [ss:ebx], eax
  mov ecx, 2
  call vm_peek16
  mov [ss:ebx+4], eax
  add word [ss:ebx+12], 6
  jmp .done
.pm:                                    ; CPL 3 protected mode: PVI
  test al, 2
  jz .realpop
  test byte [ss:ebx+4], 3
  jz .realpop
  call pvi_in
  mov esi, [ss:ebx]
  movzx eax, byte [ss:esi+0xF0000]      ; SEL_CODE3 base
  cmp al, 0xFA
  je .pcli
  cmp al, 0xFB
  jne .realpop
  test dword [ss:ebx+8], F_VIP
  jnz .realpop
  or dword [ss:ebx+8], F_VIF
  jmp .pnext
.pcli:
  and dword [ss:ebx+8], ~F_VIF
.pnext:
  call pvi_out
.next1:
  inc dword [ss:ebx]
.done:
  popad
  add esp, 4
  iretd
.realpop:
  popad
.real:
  jmp pm_stubs + 13 * 12                ; the harness's #GP stub: X record

; INT3: dump the registers and the interrupted frame, then EFLAGS &= ~ECX, |= EDX
h_bp:
  pushad
  lea ebx, [esp+32]
  call pvi_in
  DUMP "int3", M_NOVF & ~F_ARITH        ; (the flags of the code paths above differ)
  test dword [ss:ebx+8], 0x20000
  jz .pm
  DUMPMEM "v86 frame", R0_STACK-36, 36
  jmp .mod
.pm:
  DUMPMEM "cpl3 frame", R0_STACK-20, 20
.mod:
  mov eax, [esp+24]
  not eax
  and [ss:ebx+8], eax
  mov eax, [esp+20]
  or [ss:ebx+8], eax
  call pvi_out
  popad
  iretd

; INT 0x50 reaching the IDT: right only at IOPL 3 on a CPU without VME
; (QEMU), where this does the redirection VME would have done
h_redir:
  cmp dword [ss:V_HWVME], 0
  jne .bug
  pushad
  lea ebx, [esp+32]
  mov ecx, 0x50
  call vm_redirect
  popad
  iretd
.bug:
  DUMP "int 0x50 went to the IDT despite a clear redirection bit", M_NOVF
  iretd

h_int60:
  DUMP "int 0x60 handler", M_NOVF
  DUMPMEM "int 0x60 frame", R0_STACK-36, 36
  iretd

h_leave:                                ; INT 0x45: back to ring 0 for good
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP
  mov ax, SEL_SCR
  mov ds, ax
  mov es, ax
  mov fs, ax
  mov gs, ax
  jmp [ss:V_LEAVE]

; ---------------------------------------------------------------- v8086 code
BITS 16
%xdefine MODE v86
%xdefine MODESTR "v86"
v86_entry:                              ; IOPL 0, VIF 0, VIP 0, CR4.VME = 1
  OBS
  sti                                   ; VIF 1 (IF stays 0)
  OBS
  pushf
  pop ax                                ; IF 1 and IOPL 3 in the image
  cli                                   ; VIF 0
  pushf
  pop si                                ; IF 0
  OBS
  push word 0x0601
  popf                                  ; IF -> VIF, CF, DF; IF and IOPL stay
  pushf
  pop ax
  cld
  OBS
  push word 0x3000
  popf                                  ; IOPL stays 0, VIF 0
  OBS
  push word 0x0100
  EXPECT .c1
  popf                                  ; TF: #GP
.c1:
  pop ax
  EXPECT .c2
  pushfd                                ; 32-bit: #GP
.c2:
  push dword 0
  EXPECT .c3
  popfd                                 ; 32-bit: #GP
.c3:
  pop eax
  push word 0x0200
  push cs
  push word .r1
  iret                                  ; VIF 1 from the image
.r1:
  OBS
  push word 0x08C1                      ; OF SF ZF CF, IF clear
  push cs
  push word .r2
  iret                                  ; VIF 0
.r2:
  OBS
  push dword 0
  push dword 0xF000
  push dword .r3
  EXPECT .r3
  iretd                                 ; 32-bit: #GP
.r3:
  add sp, 12
  ; VIP set
  SETVF 0, F_VIP
  EXPECT .c4
  sti                                   ; #GP
.c4:
  cli                                   ; allowed
  push word 0x0200
  EXPECT .c5
  popf                                  ; IF with VIP: #GP
.c5:
  pop ax
  push word 0x0001
  popf                                  ; IF clear: allowed
  push word 0x0200
  push cs
  push word .r4
  EXPECT .r4
  iret                                  ; IF with VIP: #GP
.r4:
  add sp, 6
  push word 0x0000
  push cs
  push word .r5
  iret                                  ; IF clear: allowed
.r5:
  OBS
  SETVF F_VIP, 0
  ; INT n at IOPL 0: the redirection bitmap
  sti
  EXPECT .c6
  int 0x50                              ; clear bit: 8086 handler, image IF = VIF = 1, VIF cleared
.c6:
  OBS                                   ; the handler's IRET gave VIF back
  cli
  EXPECT .c7
  int 0x51                              ; clear bit, VIF 0
.c7:
  OBS
  EXPECT .c8
  int 0x60                              ; set bit at IOPL 0: #GP
.c8:
  ; IOPL 3: INT n still follows the bitmap; CLI/STI/PUSHF/POPF use IF
  sti                                   ; VIF 1, kept at IOPL 3
  SETVF 0, 0x3000
  EXPECT .c9
  int 0x50                              ; clear bit: 8086 handler, image = FLAGS
.c9:
  int 0x60                              ; set bit: the IDT
  pushf
  pop ax                                ; IF 0, IOPL 3
  pushfd
  pop esi                               ; VIF 1
  cli
  OBS
  SETVF 0x3000, 0
  cli                                   ; VIF 0 again
  SETVF 0, 0x3000                       ; INT 0x45 has its redirection bit set: IOPL 3 for the IDT
  int 0x45

; ---------------------------------------------------------------- CPL 3 code (PVI)
BITS 32
%xdefine MODE p32
%xdefine MODESTR "p32"
cpl3_pvi:                               ; IOPL 0, CR4.PVI = 1
  DUMP "cpl3", M_NOVF
  sti                                   ; VIF 1, IF stays 0
  DUMP "cpl3 sti", M_NOVF
  OBS
  cli
  OBS
  ; the SDM's flow (vol. 3, 20.4): with VIF clear the handler marks an
  ; interrupt pending (VIP) and the application's STI traps.  (Not VIF=VIP=1
  ; at CPL 3: Bochs faults on the next instruction fetch in that state, which
  ; the SDM does not say; docs/cpu-qemu-differences.md, "Bochs".)
  SETVF 0, F_VIP
  EXPECT .p1
  sti                                   ; VIP: #GP
.p1:
  cli                                   ; allowed
  pushfd
  or dword [esp], 0x200
  popfd                                 ; POPFD is not virtualised: IF stays 0, no fault
  DUMP "cpl3 popfd", M_NOVF
  OBS
  SETVF F_VIP, 0
  int 0x45
cpl3_nopvi:                             ; CR4.PVI = 0 (VME = 1): CLI faults at CPL 3
  EXPECT .q1
  cli
.q1:
  EXPECT .q2
  sti
.q2:
  int 0x45

code_start:
  mov eax, 1
  cpuid
  shr edx, 1
  and edx, 1
  mov [ss:V_HWVME], edx
  mov dword [ss:V_SVF], 0
  call clear_regs32
  call sys_init
  mov word [ss:TSS_BASE+0x66], IOMAP
  mov edi, TSS_BASE + REDIR
  mov ecx, 32
.fill:
  mov byte [ss:edi], 0xFF
  inc edi
  loop .fill
  and byte [ss:TSS_BASE+REDIR+(0x50>>3)], ~3       ; 0x50, 0x51: redirected
  mov esi, iobitmap
  mov edi, TSS_BASE + IOMAP
  mov ecx, 33
  call sys_copy
  mov ax, SEL_TSSV
  ltr ax
  IDT_GATE 3, h_bp, 0xEE
  IDT_GATE 13, h_gp, 0x8E
  IDT_GATE 0x45, h_leave, 0xEE
  IDT_GATE 0x50, h_redir, 0xEE
  IDT_GATE 0x60, h_int60, 0xEE
  mov eax, cr4
  or eax, 1                             ; VME
  mov cr4, eax
  mov eax, cr4
  DUMP "cr4 vme"
  mov dword [ss:V_LEAVE], after_v86
  push dword 0                          ; gs
  push dword 0                          ; fs
  push dword SCRATCH >> 4               ; ds
  push dword SCRATCH >> 4               ; es
  push dword 0                          ; ss
  push dword 0x6000                     ; esp
  push dword 0x20002                    ; VM, IOPL 0
  push dword 0xF000
  push dword v86_entry
  iretd
after_v86:
  DUMP "back from v86"
  mov eax, cr4
  or eax, 2                             ; PVI
  mov cr4, eax
  mov eax, cr4
  DUMP "cr4 vme pvi"
  mov dword [ss:V_LEAVE], after_pvi
  push dword SEL_STK3
  push dword R3_STACK
  push dword 0x0002
  push dword SEL_CODE3
  push dword cpl3_pvi
  iretd
after_pvi:
  DUMP "back from cpl3"
  mov eax, cr4
  and eax, ~2
  mov cr4, eax
  mov dword [ss:V_LEAVE], after_nopvi
  push dword SEL_STK3
  push dword R3_STACK
  push dword 0x0002
  push dword SEL_CODE3
  push dword cpl3_nopvi
  iretd
after_nopvi:
  xor eax, eax
  mov cr4, eax
  DUMP "end"
  TEST_END

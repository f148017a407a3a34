; Instruction prefixes: several segment overrides (the last one counts),
; repeated 66/67, REP/REPNE on non-string instructions (ignored), LOCK with a
; segment override, branch hints, the 15-byte instruction length limit
; (#GP(0) beyond it), operand-size prefixes on near CALL/RET/JMP in 32-bit
; code (16-bit return addresses, IP truncated to 16 bits), and O16/O32 forms
; of PUSH imm, PUSHF, RETF and IRET.
%include "lib/harness.inc"
TEST_BEGIN

%macro BODY 0
  mov dword [0x40], 0x11111111
  SETSEG fs, SCR2
  SETSEG es, SCR2
  mov dword [es:0x40], 0x22222222
  SETSEG es, SCR
  mov ebx, 0x40
  ; es fs mov eax, [bx/ebx] -> FS (scratch2)
  %if __BITS__ == 16
    db 0x26, 0x64, 0x66, 0x8B, 0x07
  %else
    db 0x26, 0x64, 0x8B, 0x03
  %endif
  DUMP "es fs: last wins"
  %if __BITS__ == 16
    db 0x64, 0x3E, 0x66, 0x8B, 0x07
  %else
    db 0x64, 0x3E, 0x8B, 0x03
  %endif
  DUMP "fs ds: last wins"
  ; repeated operand-size / address-size prefixes
  %if __BITS__ == 16
    db 0x66, 0x66, 0x66, 0xB8, 0x78, 0x56, 0x34, 0x12       ; mov eax, 0x12345678
    db 0x67, 0x67, 0x66, 0x8B, 0x03                         ; mov eax, [ebx]
  %else
    db 0x66, 0x66, 0x66, 0xB8, 0x34, 0x12                   ; mov ax, 0x1234
    db 0x67, 0x67, 0x8B, 0x07                               ; mov eax, [bx]
  %endif
  DUMP "66 66 / 67 67"
  ; REP prefixes on non-string instructions are ignored
  mov eax, 5
  mov ecx, 3
  db 0xF3, 0x90                  ; pause
  db 0xF3, 0x40                  ; rep inc (e)ax
  db 0xF2, 0x40                  ; repne inc (e)ax
  %if __BITS__ == 16
    db 0xF3, 0x66, 0x01, 0xC8    ; rep add eax, ecx
  %else
    db 0xF3, 0x01, 0xC8
  %endif
  DUMP "rep on non-string"
  call %%rr
  jmp %%rre
%%rr:
  db 0xF3, 0xC3                  ; rep ret
%%rre:
  DUMP "rep ret"
  ; LOCK after a segment override, segment override after LOCK
  mov dword [0x44], 1
  %if __BITS__ == 16
    db 0xF0, 0x3E, 0xFF, 0x06, 0x44, 0x00              ; lock ds inc word [0x44]
    db 0x3E, 0xF0, 0xFF, 0x06, 0x46, 0x00              ; ds lock inc word [0x46]
  %else
    db 0xF0, 0x3E, 0xFF, 0x05, 0x44, 0x00, 0x00, 0x00  ; lock ds inc dword [0x44]
    db 0x3E, 0xF0, 0xFF, 0x05, 0x44, 0x00, 0x00, 0x00  ; ds lock inc dword [0x44]
  %endif
  DUMPMEM "lock seg", SCRATCH + 0x40, 8
  ; branch hints
  SETFLAGS 0x002
  xor eax, eax
  db 0x3E, 0x74, 0x01            ; ds je +1 (not taken)
  inc eax
  db 0x2E, 0x75, 0x01            ; cs jne +1 (taken)
  inc eax
  DUMP "branch hints"
  ; 15-byte limit: 14 prefixes + 1 opcode is fine, 15 + 1 raises #GP(0)
  mov eax, 0
  TRY "15 bytes", db 0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x40
  TRY "16 bytes", db 0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x3E,0x40
  TRY "16 bytes imm", db 0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x3E,0x3E,0x3E,0x66,0xB8,0x11,0x22
  ; PUSH imm / PUSHF with both operand sizes
  mov esp, STACK_TOP
  o16 push strict word 0x1234
  o32 push strict dword 0x89ABCDEF
  o16 push strict byte -2
  o32 push strict byte -3
  o16 pushf
  o32 pushf
  mov eax, esp
  DUMPMEM "push sizes", STACK_TOP - 0x14, 0x14
  mov esp, STACK_TOP
  DUMP "push sizes"
%endmacro

ALL_MODES BODY

  ; operand-size prefixes on near branches in 32-bit code
  mov esp, STACK_TOP
  xor eax, eax
  db 0x66, 0xE8
  dw near16 - ($ + 2)                   ; o16 call rel16 (nasm would emit rel32)
  DUMP "o16 call/ret"
  jmp near16_e
near16:
  mov eax, esp
  mov ebx, [ss:esp]
  o16 ret
near16_e:
  mov esp, STACK_TOP
  db 0x66, 0xE8
  dw near16b - ($ + 2)
  DUMP "o16 call/o16 ret 2"
  jmp near16b_e
near16b:
  o16 ret 2
near16b_e:
  mov esp, STACK_TOP
  db 0x66, 0xE9
  dw o16jmp - ($ + 2)                   ; o16 jmp rel16
  mov eax, 0xBAD
o16jmp:
  DUMP "o16 jmp"
  ; O16 RETF / IRET
  mov esp, STACK_TOP
  push word SEL_CODE32
  push word o16retf
  o16 retf
o16retf:
  DUMP "o16 retf"
  mov esp, STACK_TOP
  push word 0x0846
  push word SEL_CODE32
  push word o16iret
  o16 iret
o16iret:
  DUMP "o16 iret"
TEST_END

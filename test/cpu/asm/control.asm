; Jcc (16 conditions x 32 flag combinations, short and near), LOOP/LOOPE/
; LOOPNE/JCXZ/JECXZ (CX and ECX), CALL/RET (near rel, r/m, ret imm16, far),
; ENTER/LEAVE (nesting 0,1,2,5), PUSH/POP (reg, imm, mem, sreg, ESP cases),
; PUSHA/POPA, PUSHF/POPF, BOUND (#BR), INT n / INT3 / INTO / IRET.
%include "lib/harness.inc"
TEST_BEGIN

DATA
cflags:                      ; every combination of CF PF ZF SF OF
%assign k 0
%rep 32
  dd 0x002 | ((k & 1) * F_CF) | (((k >> 1) & 1) * F_PF) | (((k >> 2) & 1) * F_ZF) | (((k >> 3) & 1) * F_SF) | (((k >> 4) & 1) * F_OF)
%assign k k+1
%endrep
ENDDATA

; JT cc, index, short|near: byte [0x40+index] := 1 if taken (flags untouched)
%macro JT 3
  j%1 %3 %%t
  jmp %%n
%%t:
  mov byte [0x40 + %2], 1
%%n:
%endmacro

%macro JCC_ALL 1
  JT o, 0, %1
  JT no, 1, %1
  JT b, 2, %1
  JT ae, 3, %1
  JT e, 4, %1
  JT ne, 5, %1
  JT be, 6, %1
  JT a, 7, %1
  JT s, 8, %1
  JT ns, 9, %1
  JT p, 10, %1
  JT np, 11, %1
  JT l, 12, %1
  JT ge, 13, %1
  JT le, 14, %1
  JT g, 15, %1
%endmacro

; stack helpers: fill the stack area with a pattern, dump it
%macro STACKFILL 0
  SETSEG es, FLAT
  mov edi, STACK_TOP - 0x100
  xor eax, eax          ; zero: a 32-bit push of a selector may write only 16 bits
  mov ecx, 0x40
  a32 rep stosd
  SETSEG es, SCR
  xor eax, eax
  xor ecx, ecx
  xor edi, edi
%endmacro
%macro STACKDUMP 1
  DUMPMEM %1, STACK_TOP - 0x60, 0x60
%endmacro

%macro BODY 0
  ; ------------------------------------------------ Jcc
  xor esi, esi
%%jloop:
  mov dword [0x40], 0
  mov dword [0x44], 0
  mov dword [0x48], 0
  mov dword [0x4C], 0
  mov eax, [cs:cflags + esi*4]
  mov [ss:V_TMP], eax
  push dword [ss:V_TMP]
  popfd
  JCC_ALL short
  DUMPMEM "jcc short", SCRATCH + 0x40, 16
  mov dword [0x40], 0
  mov dword [0x44], 0
  mov dword [0x48], 0
  mov dword [0x4C], 0
  JCC_ALL near
  DUMPMEM "jcc near", SCRATCH + 0x40, 16
  inc esi
  cmp esi, 32
  jb %%jloop

  ; ------------------------------------------------ LOOP family
  mov ecx, 5
  xor eax, eax
%%l1:
  inc eax
  loop %%l1
  DUMP "loop 5"
  mov ecx, 0x10000         ; a16: CX=0 -> 65536 iterations; a32: 65536 too
  xor eax, eax
%%l2:
  inc eax
  a16 loop %%l2
  DUMP "a16 loop cx=0"
  mov ecx, 0x12340003
  xor eax, eax
%%l3:
  inc eax
  a16 loop %%l3
  DUMP "a16 loop upper ecx kept"
  mov ecx, 3
  xor eax, eax
%%l4:
  inc eax
  a32 loop %%l4
  DUMP "a32 loop"
  ; loope: stops when ZF=0 (eax reaches 3) or cx=0
  mov ecx, 10
  xor eax, eax
%%l5:
  inc eax
  cmp eax, 3
  loopne %%l5
  DUMP "loopne"
  mov ecx, 10
  xor eax, eax
%%l6:
  inc eax
  cmp eax, 1
  loope %%l6
  DUMP "loope"
  mov ecx, 10
  xor eax, eax
%%l6b:
  inc eax
  cmp eax, eax
  a32 loope %%l6b
  DUMP "a32 loope all"
  mov ecx, 0x10000
  xor eax, eax
  a16 jcxz %%l7
  inc eax
%%l7:
  jecxz %%l8
  inc eax
%%l8:
  DUMP "jcxz/jecxz"
  mov ecx, 0
  a32 jecxz %%l9
  inc eax
%%l9:
  a16 jcxz %%l10
  inc eax
%%l10:
  DUMP "jecxz taken"

  ; ------------------------------------------------ CALL / RET
  STACKFILL
  mov eax, 1
  call %%f1
  DUMP "call/ret"
  jmp %%f1e
%%f1:
  add eax, 2
  DUMP "in call"
  ret
%%f1e:
  call %%f2
  DUMP "ret imm16"
  jmp %%f2e
%%f2:
  ret 8
%%f2e:
  mov ebx, %%f3
  call ebx
  mov dword [0x40], %%f3
  call [0x40]
  DUMP "call r/m"
  STACKDUMP "call stack"
  jmp %%f3e
%%f3:
  inc eax
  ret
%%f3e:
  ; far call / retf
  %ifidn MODE,rm
    call 0xF000:%%f4
  %elifidn MODE,p16
    call SEL_CODE16:%%f4
  %else
    call SEL_CODE32:%%f4
  %endif
  DUMP "call far"
  STACKDUMP "call far stack"
  jmp %%f4e
%%f4:
  mov ebx, esp
  retf 4
%%f4e:
  ; ------------------------------------------------ ENTER / LEAVE
  STACKFILL
  %if __BITS__ == 16
    mov ebp, STACK_TOP - 0x20
    mov word [ss:STACK_TOP - 0x22], 0x1111
    mov word [ss:STACK_TOP - 0x24], 0x2222
    mov word [ss:STACK_TOP - 0x26], 0x3333
    mov word [ss:STACK_TOP - 0x28], 0x4444
  %else
    mov ebp, STACK_TOP - 0x20
    mov dword [ss:STACK_TOP - 0x24], 0x11111111
    mov dword [ss:STACK_TOP - 0x28], 0x22222222
    mov dword [ss:STACK_TOP - 0x2C], 0x33333333
    mov dword [ss:STACK_TOP - 0x30], 0x44444444
  %endif
  mov eax, esp
  enter 8, 0
  DUMP "enter 8,0"
  leave
  DUMP "leave"
  enter 0, 1
  DUMP "enter 0,1"
  STACKDUMP "enter 0,1 stack"
  leave
  enter 4, 2
  DUMP "enter 4,2"
  STACKDUMP "enter 4,2 stack"
  leave
  enter 0x10, 5
  DUMP "enter 16,5"
  STACKDUMP "enter 16,5 stack"
  leave
  DUMP "leave 5"
  enter 4, 31
  DUMP "enter 4,31"
  leave
  enter 4, 33                    ; level is taken mod 32: 1
  DUMP "enter 4,33"
  leave
  enter 0x100, 0
  DUMP "enter 0x100,0"
  leave
  %if __BITS__ == 16
    o32 enter 4, 2
    DUMP "o32 enter 4,2"
    STACKDUMP "o32 enter stack"
    o32 leave
  %else
    o16 enter 4, 2
    DUMP "o16 enter 4,2"
    STACKDUMP "o16 enter stack"
    o16 leave
  %endif
  DUMP "leave other size"
  mov esp, STACK_TOP

  ; ------------------------------------------------ PUSH / POP
  STACKFILL
  mov eax, 0x11223344
  mov dword [0x40], 0xA1A2A3A4
  push eax
  push ax
  push strict byte -2
  push strict word 0x8001
  push dword 0x80000001
  push dword [0x40]
  push word [0x40]
  push esp
  push sp
  DUMP "push forms"
  STACKDUMP "push forms stack"
  pop ebx
  pop cx
  pop edx
  pop word [0x48]
  pop dword [0x4C]
  pop esi
  pop di
  pop ebp
  pop ax
  DUMP "pop forms"
  DUMPMEM "pop mem", SCRATCH + 0x48, 8
  mov esp, STACK_TOP
  STACKFILL
  push es
  push cs
  push ss
  push ds
  push fs
  push gs
  o16 push ds
  o32 push gs
  DUMP "push sreg"
  STACKDUMP "push sreg stack"
  pop eax
  pop bx
  pop es
  pop fs
  pop gs
  pop ds
  add esp, 8
  DUMP "pop sreg"
  SETSEG ds, SCR
  SETSEG es, SCR
  SETSEG fs, SCR
  SETSEG gs, SCR
  mov esp, STACK_TOP
  ; pop esp / pop [esp]
  push dword 0x8F00
  pop esp
  DUMP "pop esp"
  mov esp, STACK_TOP - 0x10
  push dword 0x12345678
  push dword 0x9ABCDEF0
  %if __BITS__ == 16
    pop dword [esp+2]         ; address computed after the pop
  %else
    pop dword [esp+4]
  %endif
  DUMP "pop [esp]"
  STACKDUMP "pop [esp] stack"
  mov esp, STACK_TOP

  ; ------------------------------------------------ PUSHA / POPA
  STACKFILL
  mov eax, 0x01010101
  mov ecx, 0x02020202
  mov edx, 0x03030303
  mov ebx, 0x04040404
  mov ebp, 0x06060606
  mov esi, 0x07070707
  mov edi, 0x08080808
  pushad
  pushaw
  STACKDUMP "pusha stack"
  xor eax, eax
  xor ecx, ecx
  xor edx, edx
  xor ebx, ebx
  xor ebp, ebp
  xor esi, esi
  xor edi, edi
  mov word [ss:esp+6], 0x5555     ; the SP image is skipped by POPA
  popaw
  DUMP "popa"
  mov dword [ss:esp+12], 0x55555555
  popad
  DUMP "popad"
  mov esp, STACK_TOP

  ; ------------------------------------------------ PUSHF / POPF
  SETFLAGS 0x8D7
  pushfd
  pushfw
  pop ax
  pop ebx
  DUMP "pushf"
  ; popf: IOPL, NT, AC, ID are writable at CPL 0; RF/VM are not; IF/TF left 0
  mov eax, 0xFFFFFCFF & ~(1 << 16) & ~(1 << 17)
  push eax
  popfd
  pushfd
  pop ebx
  DUMP "popfd all"
  push dword 0xFFFFFCFF
  popfd
  pushfd
  pop ecx
  DUMP "popfd vm/rf"
  push word 0xFCFF
  popfw
  pushfd
  pop edx
  DUMP "popf 16"
  push dword 0
  popfd
  pushfd
  pop edx
  DUMP "popfd 0"

  ; ------------------------------------------------ BOUND
  mov dword [0x40], -5
  mov dword [0x44], 100
  mov word [0x48], 0xFFF0
  mov word [0x4A], 0x0010
  mov eax, 0
  TRY "bound32 in", bound eax, [0x40]
  mov eax, 100
  TRY "bound32 hi", bound eax, [0x40]
  mov eax, 101
  TRY "bound32 over", bound eax, [0x40]
  mov eax, -6
  TRY "bound32 under", bound eax, [0x40]
  mov eax, 0x10
  TRY "bound16 in", bound ax, [0x48]
  mov eax, 0x11
  TRY "bound16 over", bound ax, [0x48]
  mov eax, 0x8000
  TRY "bound16 under", bound ax, [0x48]

  ; ------------------------------------------------ INT n, INT3, INTO
  SETFLAGS 0x8D7
  TRY "int 0x40", int 0x40
  TRY "int3", int3
  TRY "int 3", int 3
  SETFLAGS 0x002
  TRY "into no", into
  SETFLAGS 0x8D7
  TRY "into", into
  TRY "int 0xff", int 0xFF
  ; a handler that returns with IRET: IVT/IDT entry 0x41 -> int41 handler
  %ifidn MODE,rm
    push ds
    push word 0
    pop ds
    mov word [0x41*4], %%int41
    mov word [0x41*4+2], 0xF000
    pop ds
  %else
    push ds
    SETSEG ds, FLAT
    mov word [IDT_BASE + 0x41*8], %%int41
    %ifidn MODE,p16
      mov word [IDT_BASE + 0x41*8+2], SEL_CODE16
      mov word [IDT_BASE + 0x41*8+4], 0x8600   ; 16-bit interrupt gate
    %else
      mov word [IDT_BASE + 0x41*8+2], SEL_CODE32
      mov word [IDT_BASE + 0x41*8+4], 0x8F00   ; 32-bit trap gate
    %endif
    pop ds
  %endif
  STACKFILL
  SETFLAGS 0x8D7 | F_DF
  mov eax, 1
  int 0x41
  DUMP "int/iret"
  STACKDUMP "int/iret stack"
  jmp %%int41e
%%int41:
  inc eax
  mov ebx, esp
  pushfd
  pop ecx
  %if __BITS__ == 16
    mov dx, [ss:esp+4]
    iret
  %else
    mov edx, [ss:esp+8]
    iretd
  %endif
%%int41e:
  mov esp, STACK_TOP
%endmacro

ALL_MODES BODY
TEST_END

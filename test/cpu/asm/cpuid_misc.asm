; CPUID (only what both CPUs must agree on), RDTSC (monotonic, values not
; compared), UD2 and invalid encodings (#UD), flag instructions, NOPs and
; redundant prefixes, control/debug register reset values.
; CPUID: tsvm reports its own vendor/family, so leaf 0 is reduced to
; "max leaf >= 1" and leaf 1 to the feature bits FPU, TSC, CX8 and CMOV of
; EDX (which these tests exercise); everything else is zeroed before the dump.
%include "lib/harness.inc"
TEST_BEGIN

%macro UD 2+   ; label, bytes (state reset first so one miss doesn't cascade)
  mov eax, 0x12345678
  SETFLAGS 0x002
  EXPECT %%c
  db %2
  mov dword [ss:V_CONT], 0
%%c:
  DUMP %1
%endmacro

%macro BODY 0
  xor eax, eax
  cpuid
  cmp eax, 1
  setae al
  movzx eax, al
  xor ebx, ebx
  xor ecx, ecx
  xor edx, edx
  DUMP "cpuid 0 (max>=1)", M_NOARITH
  mov eax, 1
  cpuid
  and edx, (1 << 0) | (1 << 4) | (1 << 8) | (1 << 15)
  xor eax, eax
  xor ebx, ebx
  xor ecx, ecx
  DUMP "cpuid 1 (FPU TSC CX8 CMOV)", M_NOARITH

  ; RDTSC: the counter moves forward
  rdtsc
  mov esi, eax
  mov edi, edx
  mov ecx, 100
%%spin:
  loop %%spin
  rdtsc
  sub eax, esi
  sbb edx, edi
  ; edx:eax = difference > 0
  or eax, edx
  setnz al
  movzx eax, al
  xor edx, edx
  xor esi, esi
  xor edi, edi
  DUMP "rdtsc increases", M_NOARITH

  ; invalid opcodes
  mov eax, 0x12345678
  UD "ud2", 0x0F, 0x0B
  UD "fe /2", 0xFE, 0xD0
  UD "ff /7", 0xFF, 0xF8
  UD "lea reg", 0x8D, 0xC0
  UD "lock nop", 0xF0, 0x90
  UD "lock add reg", 0xF0, 0x01, 0xC0
  UD "les reg", 0xC4, 0xC0
  UD "mov cs, ax", 0x8E, 0xC8
  UD "mov sreg 6", 0x8E, 0xF0
  UD "bound reg", 0x62, 0xC0
  UD "cmpxchg8b reg", 0x0F, 0xC7, 0xC8
  UD "lgdt reg", 0x0F, 0x01, 0xD0
  UD "jmp far reg", 0xFF, 0xE8
  UD "call far reg", 0xFF, 0xD8
  UD "0f ff", 0x0F, 0xFF
  UD "ud1 0f b9", 0x0F, 0xB9, 0xC0
  ; not tested: 8F /1-7, C6 /1-7, C7 /1-7 must raise #UD; QEMU 7.2 ignores
  ; the reg field and executes POP / MOV (docs/cpu-testing.md)
  UD "mov cr1", 0x0F, 0x22, 0xC8
  UD "mov eax, cr5", 0x0F, 0x20, 0xE8
  ; not tested: F1 (INT1/ICEBP) raises #DB on real CPUs; QEMU 7.2 (pentium3) #UD
  ; aliases that execute (SALC is undocumented but present on every IA-32 CPU)
  mov eax, 0x12345600
  SETFLAGS 0x003
  TRY "salc cf=1", db 0xD6        ; SALC: AL = CF ? 0xFF : 0
  SETFLAGS 0x002
  TRY "salc cf=0", db 0xD6
  TRY "82 /0", db 0x82, 0xC0, 0x7F   ; add al, 0x7F (alias of 80 /0)

  ; legal oddities
  SETFLAGS 0x002
  stc
  cmc
  cmc
  DUMP "stc cmc cmc"
  std
  cld
  std
  clc
  DUMP "std cld std clc"
  cld
  nop
  db 0x66, 0x90
  db 0x0F, 0x1F, 0x00             ; nop dword [eax] / [bx+si]
  db 0x0F, 0x1F, 0x40, 0x00
  db 0x66, 0x66, 0x2E, 0x3E, 0x90 ; redundant prefixes on nop
  db 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65, 0xB8, 0x11, 0x11, 0x11, 0x11
  %if __BITS__ == 32
    db 0x66, 0x66, 0x66, 0xB8, 0x22, 0x22   ; mov ax, 0x2222
  %else
    db 0x66, 0x66, 0x66, 0xB8, 0x22, 0x22, 0x22, 0x22 ; mov eax, 0x22222222
  %endif
  DUMP "nops and prefixes"
  xor eax, eax
  mov eax, cr0
  DUMP "cr0"
  mov eax, dr7
  mov ebx, dr6
  and ebx, 0xFFFF0FFF
  DUMP "dr6 dr7"
  mov eax, 0x12345678
  mov ecx, eax
  lock xadd [0x40], eax
  lock bts dword [0x40], 3
  lock inc dword [0x40]
  lock or dword [0x40], ecx
  mov edx, [0x40]
  DUMP "lock ops", M_NOAF
%endmacro

ALL_MODES BODY
TEST_END

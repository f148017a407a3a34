; smoke test: the harness itself (dumps, memory dumps, exceptions) in every mode
%include "lib/harness.inc"
TEST_BEGIN

%macro BODY 0
  mov eax, 0x12345678
  mov ebx, 0x9abcdef0
  mov ecx, 0x0f0f0f0f
  mov edx, 0x80000000
  mov esi, 0x11111111
  mov edi, 0x22222222
  mov ebp, 0x33333333
  DUMP "regs"
  mov dword [0x100], 0xdeadbeef
  DUMPMEM "mem", SCRATCH + 0x100, 8
  xor edx, edx
  mov ecx, 0
  EXPECT %%c1
  div ecx
%%c1:
  DUMP "after #DE"
  TRY "ud2", ud2
%endmacro

ALL_MODES BODY
TEST_END

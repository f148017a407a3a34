; Instruction fetch across pages: an instruction straddling into a
; not-present page faults with CR2 = the second page and EIP = the
; instruction's start; once mapped it runs; patching its bytes on the second
; page is seen (decoded-instruction caches); a jump into a not-present page
; faults with CR2 = EIP = the target.  Code runs through a flat code segment
; (descriptor 0x58 rewritten), the #PF continuation runs the ROM through it.
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32
ENTER_PAGING

PT1 equ 0x82000
SEL_FLATCODE equ 0x58
CODE equ 0x400FFD            ; mov eax, imm32 at 0x400FFD..0x401001, retf at 0x401002

  SETSEG es, FLAT
  mov dword [es:GDT_BASE + SEL_FLATCODE], 0x0000FFFF
  mov dword [es:GDT_BASE + SEL_FLATCODE + 4], 0x00CF9B00
  mov edi, PT1
  xor eax, eax
  mov ecx, 1024
  rep stosd
  mov dword [es:PD_BASE + 4], PT1 | 7
  mov dword [es:PT1], 0x30000 | 7
  mov eax, cr3
  mov cr3, eax
  ; code bytes, through the identity map of the physical pages
  mov byte [es:0x30FFD], 0xB8
  mov byte [es:0x30FFE], 0x44
  mov byte [es:0x30FFF], 0x33
  mov byte [es:0x31000], 0x22
  mov byte [es:0x31001], 0x11
  mov byte [es:0x31002], 0xCB

  ; 1. second page not present
  mov eax, 0x55555555
  EXPECT c1 + 0xF0000
  call SEL_FLATCODE:CODE
  mov dword [ss:V_CONT], 0
c1:
  jmp SEL_CODE32:c1b           ; continuation ran through the flat segment
c1b:
  mov esp, STACK_TOP
  DUMP "straddling fetch into np"
  ; 2. mapped: runs
  mov dword [es:PT1 + 4], 0x31000 | 7
  invlpg [es:0x401000]
  call SEL_FLATCODE:CODE
  DUMP "straddling fetch mapped"
  ; 3. patch the immediate's byte on the second page
  mov byte [es:0x31000], 0x99
  call SEL_FLATCODE:CODE
  DUMP "patched second page"
  ; ... and through the virtual address
  mov byte [es:0x401001], 0x77
  call SEL_FLATCODE:CODE
  DUMP "patched via virtual"
  ; 4. first page's part patched (opcode: mov ecx)
  mov byte [es:0x400FFD], 0xB9
  call SEL_FLATCODE:CODE
  DUMP "patched opcode"
  ; 5. jump into a not-present page
  mov dword [es:PT1 + 4], 0
  invlpg [es:0x401000]
  EXPECT c5 + 0xF0000
  call SEL_FLATCODE:0x401002
  mov dword [ss:V_CONT], 0
c5:
  jmp SEL_CODE32:c5b
c5b:
  mov esp, STACK_TOP
  DUMP "jump into np"
TEST_END

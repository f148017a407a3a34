; Control registers: CR0 bits that read back (MP EM TS NE WP AM NW CD), CLTS,
; LMSW (sets PE, never clears it, touches only the low 4 bits), CR2 as a
; plain register, CR3 with PWT/PCD, CR4 PSE/PGE/TSD/DE, RDTSC with CR4.TSD at
; CPL 0.  The #GP(0) cases of MOV CR0 (PG without PE, NW without CD) are not
; tested: QEMU 7.2 accepts both (docs/cpu-testing.md).
%include "lib/harness.inc"
TEST_BEGIN

%macro CR0RT 2  ; label, bits to set
  mov eax, cr0
  mov edx, eax
  or eax, %2
  mov cr0, eax
  mov ebx, cr0
  mov cr0, edx
  mov eax, 0
  DUMP %1
%endmacro

%macro BODY 0
  CR0RT "cr0 mp", 0x2
  CR0RT "cr0 em", 0x4
  CR0RT "cr0 ts", 0x8
  CR0RT "cr0 ne", 0x20
  CR0RT "cr0 wp", 0x10000
  CR0RT "cr0 am", 0x40000
  mov eax, cr0
  and eax, ~0x60000000        ; CD=0 NW=0
  mov cr0, eax
  mov ebx, cr0
  or eax, 0x40000000          ; CD=1
  mov cr0, eax
  mov ecx, cr0
  or eax, 0x20000000          ; CD=1 NW=1
  mov cr0, eax
  mov edx, cr0
  DUMP "cr0 cd/nw"
  ; not tested: NW=1 with CD=0 must raise #GP(0); QEMU 7.2 loads it
  mov eax, cr0
  DUMP "cr0 after"
  ; CLTS and LMSW
  mov eax, cr0
  or eax, 8
  mov cr0, eax
  clts
  mov ebx, cr0
  mov ax, 0xFFF6              ; LMSW: only MP EM TS (and PE) are loaded
  lmsw ax
  mov ecx, cr0
  mov ax, 0x0000
  lmsw ax
  mov edx, cr0
  and edx, ~0x60000000
  mov eax, edx
  or eax, 0x60000000
  mov cr0, eax
  DUMP "clts/lmsw"
  ; CR2, CR3
  mov eax, 0xDEADB000
  mov cr2, eax
  mov ebx, cr2
  mov eax, 0x12345678
  mov cr2, eax
  mov ecx, cr2
  mov esi, cr3
  mov eax, 0x00080018         ; PWT|PCD
  mov cr3, eax
  mov edx, cr3
  mov cr3, esi
  DUMP "cr2/cr3"
  ; CR4
  mov esi, cr4
  mov eax, esi
  or eax, 0x10 | 0x80 | 0x04 | 0x08   ; PSE PGE TSD DE
  mov cr4, eax
  mov ebx, cr4
  rdtsc                       ; CPL 0: allowed with TSD
  mov eax, 0
  mov edx, 0
  mov cr4, esi
  mov ecx, cr4
  DUMP "cr4"
%endmacro

BODY
ENTER_PM32
BODY
  ; not tested: PG=1 with PE=0 must raise #GP(0); QEMU 7.2 loads it
TEST_END

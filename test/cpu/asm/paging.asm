; Paging (32-bit, non-PAE): accessed/dirty bits in PDE/PTE, #PF error codes
; and CR2 for not-present pages and tables, read-only pages with CR0.WP=0/1,
; read-only page tables, page-straddling accesses, REP MOVS that faults
; midway (partial progress), 4 MiB pages (CR4.PSE) with their A/D bits,
; INVLPG and CR3 reload after a PTE change.  All at CPL 0.
; Layout: PD at PD_BASE identity-maps 0..4 MiB (PT_BASE); PDE[1] -> PT1
; (virtual 0x400000.., test pages backed by physical 0x30000..); PDE[2] is
; not present; PDE[3] is a 4 MiB page onto physical 0.
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32
ENTER_PAGING

PT1 equ 0x82000
V1  equ 0x400000        ; virtual base of PT1's pages
P_P equ 1
P_W equ 2
P_U equ 4

; PTE i := phys | flags (through the flat segment in ES)
%macro SETPTE 3
  mov dword [es:PT1 + (%1)*4], (%2) | (%3)
%endmacro

%macro DUMP_TABLES 1
  DUMPMEM %1, PD_BASE, 16
  DUMPMEM %1, PT1, 32
%endmacro

  SETSEG es, FLAT
  ; physical test pages 0x30000.. get a recognisable pattern
  mov edi, 0x30000
  mov eax, 0x30000000
  mov ecx, 0x2000
fillpat:
  mov [es:edi], eax
  add edi, 4
  inc eax
  loop fillpat
  ; PT1: clear, then map pages
  mov edi, PT1
  xor eax, eax
  mov ecx, 1024
  rep stosd
  mov dword [es:PD_BASE + 4], PT1 | P_P | P_W | P_U
  SETPTE 0, 0x30000, P_P | P_W | P_U
  ; PTE 1: not present
  SETPTE 2, 0x32000, P_P | P_U          ; read-only
  SETPTE 3, 0x33000, P_P | P_W | P_U
  SETPTE 4, 0x34000, P_P | P_W          ; supervisor
  ; PTE 5: not present
  SETPTE 6, 0x36000, P_P | P_W | P_U
  mov eax, cr3
  mov cr3, eax
  DUMP_TABLES "initial"

  ; ---- accessed and dirty bits
  mov eax, [es:V1 + 0x10]
  DUMP "read page 0"
  DUMP_TABLES "after read"
  mov dword [es:V1 + 0x20], 0x12345678
  mov ebx, [es:V1 + 0x20]
  DUMP "write page 0"
  DUMP_TABLES "after write"
  mov al, [es:V1 + 0x2000 + 5]
  DUMP "read ro page"
  DUMP_TABLES "after ro read"

  ; ---- not-present page: read, write, rmw
  mov eax, 0x11111111
  TRY "np read", mov eax, [es:V1 + 0x1000 + 0x44]
  TRY "np write", mov dword [es:V1 + 0x1ABC], 0x55
  ; not-present page table (PDE 2)
  TRY "np pde read", mov eax, [es:0x800123]
  TRY "np pde write", mov byte [es:0x8FFFFF], 1
  DUMP_TABLES "after np"

  ; ---- read-only page: WP=0 allows supervisor writes, WP=1 faults
  mov dword [es:V1 + 0x2010], 0xCAFEBABE
  mov ebx, [es:V1 + 0x2010]
  DUMP "ro write wp=0"
  DUMP_TABLES "after ro write"
  mov eax, cr0
  or eax, 0x10000
  mov cr0, eax
  TRY "ro write wp=1", mov dword [es:V1 + 0x2014], 0xDEADBEEF
  TRY "ro inc wp=1", inc word [es:V1 + 0x2FFE]
  mov ebx, [es:V1 + 0x2014]
  DUMP "ro after fault"
  ; read-modify-write forms on a read-only page: all write faults, even
  ; CMPXCHG whose comparison fails and BT (read only) does not fault
  mov eax, 0x77777777
  mov ecx, 0x12345678
  SETFLAGS 0x8D7
  EXPECT ro1, M_NOARITH     ; QEMU 7.2 updates EFLAGS although CMPXCHG faults
  cmpxchg [es:V1 + 0x2020], ecx
  mov dword [ss:V_CONT], 0
ro1:
  DUMP "ro cmpxchg ne"
  mov eax, [es:V1 + 0x2020]
  SETFLAGS 0x8D7
  EXPECT ro2, M_NOARITH
  cmpxchg [es:V1 + 0x2020], ecx
  mov dword [ss:V_CONT], 0
ro2:
  DUMP "ro cmpxchg eq"
  SETFLAGS 0x8D7
  TRY "ro xchg", xchg [es:V1 + 0x2024], ecx
  SETFLAGS 0x002
  TRY "ro bt", bt dword [es:V1 + 0x2024], 3
  SETFLAGS 0x8D6
  TRY "ro bts", bts dword [es:V1 + 0x2024], 3
  SETFLAGS 0x002
  TRY "ro xadd", xadd [es:V1 + 0x2028], ecx
  SETFLAGS 0x002
  TRY "ro add", add [es:V1 + 0x2028], ecx
  SETFLAGS 0x002
  TRY "ro inc", inc dword [es:V1 + 0x2028]
  SETFLAGS 0x002
  DUMPMEM "ro page after rmw", 0x32020, 16
  ; read-only PDE
  mov dword [es:PD_BASE + 4], PT1 | P_P | P_U
  mov eax, cr3
  mov cr3, eax
  TRY "ro pde write wp=1", mov dword [es:V1 + 0x3000], 1
  mov eax, [es:V1 + 0x3000]
  DUMP "ro pde read"
  mov dword [es:PD_BASE + 4], PT1 | P_P | P_W | P_U
  mov eax, cr3
  mov cr3, eax
  mov eax, cr0
  and eax, ~0x10000
  mov cr0, eax
  ; supervisor page at CPL 0: fine
  mov dword [es:V1 + 0x4000], 0x44444444
  mov eax, [es:V1 + 0x4000]
  DUMP "supervisor page"

  ; ---- accesses that straddle into a not-present page
  mov eax, 0x22222222
  TRY "straddle read", mov eax, [es:V1 + 0xFFE]
  TRY "straddle write", mov dword [es:V1 + 0x4FFD], 0x01020304
  DUMPMEM "straddle write mem", 0x34FF0, 16
  ; REP MOVSB that runs into the not-present page 5 midway
  push ds
  SETSEG ds, FLAT
  mov esi, V1 + 0x10
  mov edi, V1 + 0x4FF0
  mov ecx, 0x40
  EXPECT rm1_cont
  rep movsb
  mov dword [ss:V_CONT], 0
rm1_cont:
  pop ds
  DUMP "rep movsb faults midway"
  DUMPMEM "rep movsb dest", 0x34FE0, 32
  ; and one that reads from the not-present page 1
  push ds
  SETSEG ds, FLAT
  mov esi, V1 + 0xFF8
  mov edi, V1 + 0x6000
  mov ecx, 0x10
  EXPECT rm2_cont
  rep movsd
  mov dword [ss:V_CONT], 0
rm2_cont:
  pop ds
  DUMP "rep movsd src faults"
  DUMPMEM "rep movsd dest", 0x36000, 16

  ; ---- INVLPG / CR3 reload after changing a PTE
  mov eax, [es:V1 + 0x3004]             ; page 3 into the TLB
  SETPTE 3, 0x36000, P_P | P_W | P_U
  invlpg [es:V1 + 0x3000]
  mov eax, [es:V1 + 0x3004]
  DUMP "after invlpg"
  SETPTE 3, 0x30000, P_P | P_W | P_U
  mov ebx, cr3
  mov cr3, ebx
  mov eax, [es:V1 + 0x3004]
  DUMP "after cr3 reload"
  ; a page made present after a fault is used without INVLPG
  SETPTE 1, 0x31000, P_P | P_W | P_U
  mov eax, [es:V1 + 0x1044]
  DUMP "np then present"
  DUMP_TABLES "after invlpg"

  ; ---- 4 MiB pages
  mov eax, cr4
  or eax, 0x10                          ; PSE
  mov cr4, eax
  mov dword [es:PD_BASE + 12], 0x00000000 | 0x80 | P_P | P_W
  mov eax, cr3
  mov cr3, eax
  mov eax, [es:0xC00000 + SCRATCH + 0x40]
  DUMP "4M read"
  DUMP_TABLES "4M after read"
  mov dword [es:0xC00000 + SCRATCH + 0x80], 0xABCDEF01
  mov ebx, [SCRATCH*0 + 0x80]           ; the same memory through DS (base SCRATCH)
  DUMP "4M write"
  DUMP_TABLES "4M after write"
  ; 4 MiB page, read-only, WP=1
  mov dword [es:PD_BASE + 12], 0x00000000 | 0x80 | P_P
  mov eax, cr3
  mov cr3, eax
  mov eax, cr0
  or eax, 0x10000
  mov cr0, eax
  TRY "4M ro write", mov dword [es:0xC00000 + SCRATCH + 0x84], 1
  mov eax, cr0
  and eax, ~0x10000
  mov cr0, eax
  ; PS ignored without CR4.PSE: the PDE points to a page table at phys 0
  ; (the IVT area), whose entry 0 is not a sensible PTE: not compared, only
  ; the fault/no-fault outcome through a clean table instead
  mov eax, cr4
  and eax, ~0x10
  mov cr4, eax
  mov dword [es:PD_BASE + 12], PT1 | 0x80 | P_P | P_W | P_U
  mov eax, cr3
  mov cr3, eax
  mov eax, [es:0xC00000 + 0x10]          ; -> PT1 entry 0 -> phys 0x30000
  DUMP "PS without PSE"
  DUMP_TABLES "final"
TEST_END

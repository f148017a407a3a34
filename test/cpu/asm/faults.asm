; Faulting instructions change nothing: every read-modify-write and
; store form whose memory operand is on a read-only page (CR0.WP=1) or a
; not-present page must raise #PF with EFLAGS, the registers and memory as
; they were before the instruction (and REP string instructions keep the
; progress of the iterations that completed).
; QEMU 7.2 updates EFLAGS before the faulting store of CMPXCHG: those
; records mask the arithmetic flags (docs/cpu-testing.md).
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32
ENTER_PAGING

PT1 equ 0x82000
V1  equ 0x400000
RO  equ V1 + 0x2000          ; read-only page (physical 0x32000)
NP  equ V1 + 0x1000          ; not-present page

  SETSEG es, FLAT
  mov edi, PT1
  xor eax, eax
  mov ecx, 1024
  rep stosd
  mov dword [es:PD_BASE + 4], PT1 | 7
  mov dword [es:PT1 + 0], 0x30000 | 7
  mov dword [es:PT1 + 8], 0x32000 | 5        ; read-only, user
  mov dword [es:PT1 + 12], 0x33000 | 7
  mov eax, cr3
  mov cr3, eax
  mov eax, cr0
  or eax, 0x10000                            ; WP
  mov cr0, eax
  ; page contents
  mov edi, 0x32000
  mov eax, 0x80402010
  mov ecx, 0x400
fillro:
  mov [es:edi], eax
  add edi, 4
  rol eax, 1
  loop fillro

%macro REGS 0
  mov eax, 0x11111111
  mov ecx, 0x00000003
  mov edx, 0x33333333
  mov ebx, 0x44444444
  mov esi, 0x55555555
  mov edi, 0x66666666
  mov ebp, 0x77777777
%endmacro

; F "prefix", "label", flags, mask, insn
%macro F 5+
  %strcat %%l %1, %2
  REGS
  SETFLAGS %3
  EXPECT %%c, %4
  %5
  mov dword [ss:V_CONT], 0
%%c:
  DUMP %%l, %4
%endmacro

%macro FORMS 2 ; flags-in, label prefix
  F %2, " add m,r", %1, M_ALL, add [es:RO + 0x10], ecx
  F %2, " adc m8,imm", %1, M_ALL, adc byte [es:RO + 0x11], 0x7F
  F %2, " sub m16,r", %1, M_ALL, sub [es:RO + 0x12], cx
  F %2, " sbb m,imm8", %1, M_ALL, sbb dword [es:RO + 0x14], strict byte -1
  F %2, " and m,r", %1, M_ALL, and [es:RO + 0x18], edx
  F %2, " or m8,r", %1, M_ALL, or [es:RO + 0x19], dh
  F %2, " xor m,imm", %1, M_ALL, xor dword [es:RO + 0x1C], 0x80000000
  F %2, " inc m", %1, M_ALL, inc dword [es:RO + 0x20]
  F %2, " dec m16", %1, M_ALL, dec word [es:RO + 0x22]
  F %2, " neg m", %1, M_ALL, neg dword [es:RO + 0x24]
  F %2, " not m8", %1, M_ALL, not byte [es:RO + 0x25]
  F %2, " shl m,1", %1, M_ALL, shl dword [es:RO + 0x28], 1
  F %2, " sar m,cl", %1, M_ALL, sar dword [es:RO + 0x28], cl
  ; QEMU 7.2 updates CF/OF before the faulting store of RCL m16,imm (a fault must
  ; leave EFLAGS unchanged, as tsvm does): CF and OF not compared here
  F %2, " rcl m16,imm", %1, (M_ALL & ~(F_CF|F_OF)), rcl word [es:RO + 0x2A], 5
  F %2, " ror m8,cl", %1, M_ALL, ror byte [es:RO + 0x2B], cl
  F %2, " shld m,r,imm", %1, M_ALL, shld [es:RO + 0x2C], edx, 4
  F %2, " shrd m16,r,cl", %1, M_ALL, shrd [es:RO + 0x2C], dx, cl
  F %2, " bts m,r", %1, M_ALL, bts [es:RO + 0x30], ecx
  F %2, " btr m,imm", %1, M_ALL, btr dword [es:RO + 0x30], 4
  F %2, " btc m16,r", %1, M_ALL, btc [es:RO + 0x30], cx
  F %2, " xadd m,r", %1, M_ALL, xadd [es:RO + 0x34], ecx
  F %2, " xadd m8,r", %1, M_ALL, xadd [es:RO + 0x35], dl
  F %2, " xchg m,r", %1, M_ALL, xchg [es:RO + 0x38], edx
  F %2, " cmpxchg m,r ne", %1, M_NOARITH, cmpxchg [es:RO + 0x3C], edx
  F %2, " cmpxchg8b ne", %1, M_ALL & ~F_ZF, cmpxchg8b [es:RO + 0x40]
  F %2, " setc m", %1, M_ALL, setc [es:RO + 0x44]
  F %2, " mov m,r", %1, M_ALL, mov [es:RO + 0x48], ebx
  F %2, " pop m", %1, M_ALL, pop dword [es:RO + 0x4C]
  F %2, " lock add m,r", %1, M_ALL, lock add [es:RO + 0x50], ecx
  F %2, " lock xadd m,r", %1, M_ALL, lock xadd [es:RO + 0x50], ecx
  F %2, " lock bts m,imm", %1, M_ALL, lock bts dword [es:RO + 0x50], 31
  F %2, " mul np", %1, M_ALL, mul dword [es:NP + 0x10]
  F %2, " div np", %1, M_ALL, div dword [es:NP + 0x10]
  F %2, " add r,np", %1, M_ALL, add ecx, [es:NP + 0x10]
  F %2, " cmp np,imm", %1, M_ALL, cmp dword [es:NP + 0x10], 5
  F %2, " imul r,np,imm", %1, M_ALL, imul edx, [es:NP + 0x10], 7
  F %2, " bsf r,np", %1, M_ALL, bsf edx, [es:NP + 0x10]
  F %2, " cmovz r,np", %1, M_ALL, cmovz edx, [es:NP + 0x10]
  F %2, " push np", %1, M_ALL, push dword [es:NP + 0x10]
  F %2, " lea/xlat np", %1, M_ALL, es xlatb
  ; shifts/rotates by 0 still write their memory operand back (QEMU and,
  ; as far as known, real CPUs): #PF on the read-only page
  F %2, " shl m,imm 0", %1, M_ALL, shl dword [es:RO + 0x54], 0
  F %2, " rol m8,imm 0", %1, M_ALL, rol byte [es:RO + 0x54], 0
  F %2, " rcr m,imm 32", %1, M_ALL, rcr dword [es:RO + 0x54], 32
  F %2, " shld m,r,0", %1, M_ALL, shld [es:RO + 0x54], edx, 0
%endmacro

  push dword 0
  push dword 0
  FORMS 0x8D7, "set"
  FORMS 0x002, "clear"
  add esp, 8
  DUMPMEM "ro page unchanged", 0x32000, 0x60

  ; string instructions: completed iterations stay done
  push ds
  SETSEG ds, FLAT
  REGS
  mov esi, V1 + 0x3000
  mov edi, RO - 8
  mov ecx, 5
  SETFLAGS 0x8D7
  EXPECT s1
  rep movsd                           ; 2 dwords land on page 1, then #PF
  mov dword [ss:V_CONT], 0
s1:
  DUMP "rep movsd into ro"
  REGS
  mov edi, RO + 0x20
  mov ecx, 3
  SETFLAGS 0x002
  EXPECT s2
  rep stosb
  mov dword [ss:V_CONT], 0
s2:
  DUMP "rep stosb on ro"
  REGS
  mov esi, NP - 6
  mov ecx, 4
  EXPECT s3
  rep lodsw
  mov dword [ss:V_CONT], 0
s3:
  DUMP "rep lodsw into np"
  REGS
  mov esi, V1 + 0x3000
  mov edi, NP - 4
  mov ecx, 3
  SETFLAGS 0x8D7
  EXPECT s4
  repe cmpsd
  mov dword [ss:V_CONT], 0
s4:
  DUMP "repe cmpsd into np"
  REGS
  mov edi, NP - 2
  mov eax, 0x12340000
  mov ecx, 3
  SETFLAGS 0x002
  EXPECT s5
  repe scasw
  mov dword [ss:V_CONT], 0
s5:
  DUMP "repe scasw into np"
  pop ds
  DUMPMEM "page 0 tail", 0x30FF0, 16
TEST_END

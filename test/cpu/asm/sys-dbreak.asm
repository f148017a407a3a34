; Data and I/O breakpoints (SDM vol. 3, 17.2): DR7 R/W = 01 (writes) and 11
; (reads or writes) with LEN 1/2/4 on aligned addresses, reported as a trap:
; #DB after the access's instruction with DR6.B0-B3 naming the enabled
; breakpoint hit, EIP of the next instruction, the instruction's results in
; place, also with RF=1. Accesses beside the watched bytes on the same page,
; reads of a write-only breakpoint, two breakpoints on the same bytes (one
; hit at a time), disabled and re-enabled breakpoints, GE/LE, REP string
; instructions (the trap comes after the iteration that touched the bytes,
; EIP still on the REP instruction), data breakpoints with paging on, and I/O
; breakpoints (R/W = 10 with CR4.DE = 1).
; Left out, because QEMU 7.2 departs from the SDM there (see
; qemu-diff/sys-dbreak-diff.asm and docs/cpu-qemu-differences.md): one access
; hitting two breakpoints, unaligned DRn, a data breakpoint together with TF.
%include "lib/harness.inc"
%include "lib/sys.inc"
TEST_BEGIN
SYS_LIB

%macro IDT_GATE 2       ; vector, handler: DPL0 32-bit interrupt gate
  mov dword [ss:IDT_BASE+(%1)*8], (SEL_CODE32 << 16) | ((%2) - $$)
  mov dword [ss:IDT_BASE+(%1)*8+4], 0x8E00
%endmacro

; DR7 fields: enable bits and R/W, LEN of breakpoint n
%define G(n) (2 << ((n) * 2))
%define L(n) (1 << ((n) * 2))
%define RW(n, v) ((v) << (16 + (n) * 4))
%define LEN(n, v) ((v) << (18 + (n) * 4))
W equ 1                 ; R/W: data writes
IO equ 2                ; R/W: I/O (CR4.DE)
RWA equ 3               ; R/W: data reads or writes
L1 equ 0                ; LEN: 1, 2, 4 bytes
L2 equ 1
L4 equ 3

; SETBP n, linear address, dr7: DRn := address, DR7 := dr7
%macro SETBP 3
  mov eax, %2
  mov dr%1, eax
  mov eax, %3
  mov dr7, eax
%endmacro

ENTER_PM32
  jmp code_start
sys_gdt_extra:
  dq 0                          ; 0x100 (sys_init needs at least one)
sys_gdt_extra_end:

; #DB: EAX = DR6, EBX = return EIP, EDX = EFLAGS (ECX ESI EDI as interrupted); DR6 cleared after
h_db:
  pushad
  mov eax, dr6
  mov ebx, [esp+32]
  mov edx, [esp+40]
  DUMP "#DB"
  xor eax, eax
  mov dr6, eax
  popad
  iretd

code_start:
  call sys_init
  IDT_GATE 1, h_db
  xor eax, eax
  mov dr6, eax

  ; ---- DR0: 4-byte write breakpoint at DS:0x100 (linear 0x10100)
  SETBP 0, SCRATCH+0x100, G(0) | RW(0, W) | LEN(0, L4)
  mov eax, 0x11223344
  mov [0x100], eax              ; trap after this one
  DUMP "after mov [0x100]"
  mov ebx, [0x100]              ; a read: no trap
  mov [0x104], al               ; the next byte: no trap
  mov [0xFC], eax               ; the bytes below: no trap
  mov ecx, [0x80]
  mov [0x180], ecx              ; same page, elsewhere: no trap
  DUMP "no traps"
  mov [0x103], al               ; last byte: trap
  mov word [0xFF], 0x5566       ; straddles the first byte: trap
  mov [0xFE], eax               ; straddles two bytes: trap
  add dword [0x100], 0x10       ; read-modify-write: trap
  inc byte [0x102]              ; trap
  push dword [0x100]            ; a read: no trap (the push is to the stack)
  pop dword [0x100]             ; a write: trap
  xchg [0x101], cl              ; trap
  DUMP "dr0 done"

  ; ---- DR1: 2-byte read/write breakpoint at DS:0x200
  SETBP 1, SCRATCH+0x200, L(1) | RW(1, RWA) | LEN(1, L2)
  mov al, [0x201]               ; read: trap
  mov al, [0x202]               ; no trap
  mov al, [0x1FF]               ; no trap
  cmp word [0x1FF], 0           ; straddling read: trap
  mov [0x200], al               ; write: trap
  movzx ecx, word [0x200]       ; trap
  DUMP "dr1 done"

  ; ---- DR2: 1-byte write breakpoint, DR3: 4-byte read/write at the same place
  SETBP 2, SCRATCH+0x300, G(2) | RW(2, W) | LEN(2, L1)
  mov eax, SCRATCH+0x300
  mov dr3, eax
  mov eax, G(2) | RW(2, W) | LEN(2, L1) | G(3) | RW(3, RWA) | LEN(3, L4)
  mov dr7, eax
  mov al, [0x300]               ; B3 only
  mov byte [0x301], 2           ; B3 only (DR2 is one byte)
  mov dword [0x2FC], 0          ; neither
  DUMP "dr2 dr3 done"
  ; (a write hitting DR2 and DR3 at once: qemu-diff/sys-dbreak-diff.asm)

  ; ---- disabled breakpoints: enables clear (R/W kept), then GE|LE alone
  mov eax, RW(0, W) | LEN(0, L4) | RW(1, RWA) | LEN(1, L2)
  mov dr7, eax
  mov dword [0x100], 7
  mov al, [0x200]
  mov eax, 0x300                ; LE | GE only
  mov dr7, eax
  mov dword [0x100], 8
  DUMP "disabled: no traps"
  SETBP 0, SCRATCH+0x100, 0x300 | G(0) | RW(0, W) | LEN(0, L4)
  mov dword [0x100], 9          ; enabled again (GE/LE change nothing): trap
  DUMP "re-enabled"
  pushfd
  or dword [esp], 0x10000
  push cs
  push dword .rf
  iretd                         ; RF=1 for the next instruction
.rf:
  mov dword [0x100], 10         ; RF masks instruction breakpoints only: trap
  DUMP "rf"

  ; ---- REP string instructions: the trap follows the iteration that wrote the bytes
  SETBP 2, SCRATCH+0x300, G(2) | RW(2, W) | LEN(2, L1)
  cld
  mov edi, 0x2FE
  mov ecx, 5
  mov al, 0xAA
  rep stosb                     ; trap after the third iteration, EIP at the REP
  DUMP "rep stosb"
  mov esi, 0x100
  mov edi, 0x2FC
  mov ecx, 3
  rep movsd                     ; the second dword (0x300-0x303) hits
  DUMP "rep movsd"
  SETBP 1, SCRATCH+0x200, G(1) | RW(1, RWA) | LEN(1, L2)
  mov esi, 0x1FC
  mov ecx, 4
  rep lodsw                     ; reads: the third word hits
  DUMP "rep lodsw"
  std
  mov edi, 0x304
  mov ecx, 4
  mov al, 0x55
  rep stosb                     ; downwards: 0x304 0x303 0x302 0x301: no hit
  cld
  DUMP "rep stosb down"
  xor eax, eax
  mov dr7, eax
  DUMPMEM "scratch 0x0F0", SCRATCH+0xF0, 0x20
  DUMPMEM "scratch 0x1F0", SCRATCH+0x1F0, 0x20
  DUMPMEM "scratch 0x2F0", SCRATCH+0x2F0, 0x20

  ; ---- with paging: the breakpoint is on the linear address
  ENTER_PAGING
  SETBP 0, SCRATCH+0x100, G(0) | RW(0, W) | LEN(0, L4)
  mov dword [0x100], 0x42       ; trap
  mov dword [0x108], 0x43       ; no trap
  mov ecx, 64
.loop:                          ; many accesses to the watched page (the slow path)
  mov [0x400+ecx*4], ecx
  loop .loop
  DUMP "paging"
  xor eax, eax
  mov dr7, eax
  mov dword [0x100], 0x44       ; disarmed: no trap
  DUMP "paging disarmed"

  ; ---- I/O breakpoints (CR4.DE): port 0x80, 1 byte; port 0x84, 4 bytes
  mov eax, cr4
  or eax, 8
  mov cr4, eax
  SETBP 0, 0x80, G(0) | RW(0, IO) | LEN(0, L1)
  mov eax, 0x84
  mov dr1, eax
  mov eax, G(0) | RW(0, IO) | LEN(0, L1) | G(1) | RW(1, IO) | LEN(1, L4)
  mov dr7, eax
  mov al, 1
  out 0x80, al                  ; trap
  out 0x81, al                  ; no trap
  mov dx, 0x86
  out dx, al                    ; trap (B1)
  in al, 0x87                   ; trap (B1)
  in al, 0x83                   ; no trap
  mov dx, 0x7F
  out dx, ax                    ; 0x7F-0x80: trap (B0)
  xor eax, eax                  ; (what the ports read is not the point)
  DUMP "io done"
  xor eax, eax
  mov dr7, eax
  mov eax, cr4
  and eax, ~8
  mov cr4, eax
  mov eax, dr6
  DUMP "end"
  TEST_END

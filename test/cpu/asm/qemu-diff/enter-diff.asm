; ENTER: the final stack pointer and the nested levels (SDM vol. 2, ENTER:
; "#SS(0) if the new value of the SP or ESP register is outside the stack
; segment limit", #PF for the stack accesses).  QEMU (7.2, TCG) checks no
; stack limit and does not probe the final ESP, so test/cpu/bochs.test.ts
; compares tsvm with Bochs here.  A faulting ENTER leaves ESP and EBP as they
; were (the exception record shows the interrupted registers).  (Pushes of
; the nested levels that fault are not tested: the handler's frame would go
; to the same faulting stack.)
;   node dist/test/cpu/harness.js --bochs qemu-diff/enter-diff
%include "lib/harness.inc"
TEST_BEGIN
ENTER_PM32

; ENT "label", esp, ebp, enter operands: run ENTER from that ESP/EBP; after it
; ECX/EDX hold ESP/EBP and the stack is set back to %4 for the dump; %6 is
; an optional prefix (o16).  FS is flat (the harness variables at 0x500).
%macro ENT 5-6
  mov esp, %2
  mov ebp, %3
  xor ecx, ecx
  xor edx, edx
  mov dword [fs:V_CONT], %%cont      ; EXPECT, through FS: SS is not flat here
  mov dword [fs:V_XMASK], M_ALL
  %6 enter %5
  mov ecx, esp
  mov edx, ebp
  mov dword [fs:V_CONT], 0
%%cont:
  mov esp, %4
  DUMP %1
%endmacro

  mov ax, SEL_FLAT
  mov fs, ax
  ; ---- expand-down stack segment: base SCRATCH, offsets 0x1000..4G-1 valid
  mov ax, SEL_EXPDN
  mov ss, ax
  ENT "expdn: final esp inside", 0x1400, 0x1480, 0x1400, {0x2FC, 0}
  ENT "expdn: final esp at the limit", 0x1400, 0x1480, 0x1400, {0x3FC, 0}
  ENT "expdn: final esp below the limit", 0x1400, 0x1480, 0x1400, {0x400, 0}
  ENT "expdn: final dword straddling the limit", 0x1400, 0x1480, 0x1400, {0x3FE, 0}
  ENT "expdn: o16 final word at the limit", 0x1400, 0x1480, 0x1400, {0x3FE, 0}, o16
  ENT "expdn: o16 final word straddling the limit", 0x1400, 0x1480, 0x1400, {0x3FF, 0}, o16
  ENT "expdn: level 2, final esp below", 0x1400, 0x1480, 0x1400, {0x3F8, 2}
  ENT "expdn: level 3 inside", 0x1400, 0x1480, 0x1400, {0x10, 3}
  ENT "expdn: level 3 copy from below the limit", 0x1400, 0x1004, 0x1400, {0x10, 3}
  mov ax, SEL_FLAT
  mov ss, ax
  mov esp, STACK_TOP

  ; ---- paging: the page below the stack (0x7000) not present, then read-only
  ENTER_PAGING
  mov eax, cr0
  or eax, 0x10000                ; WP
  mov cr0, eax
  mov dword [PT_BASE - SCRATCH + 7 * 4], 0
  invlpg [ss:0x7000]
  ENT "pg: final esp on a not-present page", 0x8400, 0x8480, 0x8400, {0x500, 0}
  ENT "pg: final esp just above it", 0x8400, 0x8480, 0x8400, {0x3FC, 0}
  ENT "pg: final dword straddling into it", 0x8400, 0x8480, 0x8400, {0x3FE, 0}
  ENT "pg: level 3 reads from it", 0x8400, 0x8004, 0x8400, {0x8, 3}
  mov dword [PT_BASE - SCRATCH + 7 * 4], 0x7000 | 5   ; present, read-only
  invlpg [ss:0x7000]
  ENT "pg: final esp on a read-only page", 0x8400, 0x8480, 0x8400, {0x500, 0}
  ENT "pg: o16 final word on a read-only page", 0x8400, 0x8480, 0x8400, {0x404, 0}, o16
  mov dword [PT_BASE - SCRATCH + 7 * 4], 0x7000 | 7
  invlpg [ss:0x7000]
  ENT "pg: final esp writable again", 0x8400, 0x8480, 0x8400, {0x500, 0}
TEST_END

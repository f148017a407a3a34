; Segment limits and types: the accesses that stay inside their segments
; (QEMU checks no data segment limit, so the faulting cases are in
; qemu-diff/seglimit-diff.asm, compared with Bochs). See lib/seglimit.inc.
%include "lib/seglimit.inc"

; Segment limits and types, every case of lib/seglimit.inc including those
; that fault: QEMU (7.2, TCG) checks no data segment limit or type, so
; test/cpu/bochs.test.ts compares tsvm with Bochs here.
;   node dist/test/cpu/harness.js --bochs qemu-diff/seglimit-diff
%define SDM_FAULTS
%include "lib/seglimit.inc"

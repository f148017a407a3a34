/**
 * The one preallocated object thrown when guest code raises an exception.
 * The run loop catches it once per slice (never per instruction) and delivers
 * the exception; nothing else may catch it, save the regions' FPU import
 * (src/jit/fpu-call.ts), which drops it and leaves the instruction to the
 * interpreter, which raises it again.
 */
export class CpuFault {
  vector = 0;
  errorCode = 0;
  hasErrorCode = false;
}

/** Thrown out of `Cpu.run` when the guest triple-faults: the machine shuts down. */
export class TripleFault extends Error {
  constructor(readonly chain: string) {
    super(`triple fault: ${chain}`);
    this.name = 'TripleFault';
  }
}

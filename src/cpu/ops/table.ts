/**
 * The opcode dispatch tables. OPS is indexed by `opcode | (o32 ? 0x100 : 0)`
 * for one-byte opcodes; OPS_0F likewise for the bytes after 0x0F. Each group
 * file registers its handlers; everything left over raises #UD.
 */
import type { Cpu } from '../cpu.js';

export type Op = (cpu: Cpu) => void;

/** The handler of every undefined opcode. */
export const ud: Op = (cpu) => cpu.raiseUD();

export const OPS: Op[] = new Array<Op>(0x200).fill(ud);
export const OPS_0F: Op[] = new Array<Op>(0x200).fill(ud);

/** Register one handler for both operand sizes, or separate 16- and 32-bit ones. */
export function op(code: number, h16: Op, h32: Op = h16): void {
  OPS[code] = h16;
  OPS[code | 0x100] = h32;
}

export function op0f(code: number, h16: Op, h32: Op = h16): void {
  OPS_0F[code] = h16;
  OPS_0F[code | 0x100] = h32;
}

op(0x0f, (cpu) => {
  const b = cpu.fetch8();
  OPS_0F[b | (cpu.o32 ? 0x100 : 0)](cpu);
});

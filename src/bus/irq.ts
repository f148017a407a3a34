/**
 * Interrupt lines. A device raises or lowers a line it was given by the board
 * and never knows which controller input it is wired to.
 */
export interface IrqLine {
  /** Drive the line: 1 = asserted, 0 = deasserted. Edge-triggered inputs latch on 0 -> 1. */
  set(level: number): void;
}

/** A line that goes nowhere (a device whose interrupt is not wired). */
export const NO_IRQ: IrqLine = { set() {} };

/** A line that records its level, for tests. */
export class TestIrqLine implements IrqLine {
  level = 0;
  raises = 0;
  set(level: number): void {
    if (level && !this.level) this.raises++;
    this.level = level ? 1 : 0;
  }
}

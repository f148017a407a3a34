/**
 * What devices need from the host. Devices receive these interfaces from the
 * board and never touch Node or the DOM themselves.
 */

/** A byte stream out of the machine (debug console, POST codes, serial output). */
export interface CharSink {
  write(byte: number): void;
}

/** Loads every opcode group so its handlers are in the tables, and exports the tables. */
import './alu.js';
import './move.js';
import './control.js';
import './string.js';
import './bits.js';
import './system.js';

export { OPS, OPS_0F } from './table.js';

/**
 * The host terminal pieces a front end uses with a runner: the serial
 * console with its Ctrl-A escapes, the VGA text screen drawn in a terminal,
 * and character-device errors. Re-exported here so that front ends (the
 * CLI) depend on src/vmm alone.
 */
export { TerminalConsole, type ConsoleHandlers } from '../host/node/console.js';
export { TerminalScreen } from '../host/node/textscreen.js';

/**
 * 2023-01-01T00:00:00Z: the RTC start when the host gives none (machines
 * built in tests); the CLI passes the host time or -rtc base=. On its own so
 * that the machine spec's validation (src/vmm/spec.ts) does not load the
 * whole machine.
 */
export const DEFAULT_RTC_EPOCH = 1672531200;

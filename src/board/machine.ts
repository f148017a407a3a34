/**
 * A PC: memory map, device wiring in one readable function, and the run loop.
 * Today this is the bare machine of the CPU work (RAM, a firmware ROM, the
 * debug console and the POST port); the chipset devices join it here.
 */
import { PhysicalMemory } from '../bus/memory.js';
import { IoPorts } from '../bus/ports.js';
import { Cpu } from '../cpu/cpu.js';
import { TripleFault } from '../cpu/fault.js';
import { Fpu, type FpuState } from '../cpu/fpu.js';
import { loadCpuState, saveCpuState, type CpuState } from '../cpu/state.js';
import { StateError } from '../state/state.js';
import type { CharSink } from '../devices/backends.js';
import { DebugCon } from '../devices/debugcon.js';
import { PostCodePort } from '../devices/postcode.js';

export interface MachineConfig {
  /** Guest RAM in bytes. */
  memoryBytes: number;
  /** Firmware image, mapped at the top of the 4 GiB space with its last 128 KiB below 1 MiB. */
  bios: Uint8Array;
  /** Where bytes written to port 0xE9 go. */
  debugcon?: CharSink;
  /** Where POST codes written to port 0x80 go (as hex lines). */
  postcodes?: CharSink;
}

export class MachineConfigError extends Error {}

/** Largest firmware image accepted: a 16 MiB flash chip, the largest the PC map reserves. */
export const MAX_BIOS_BYTES = 16 * 1024 * 1024;
/** How much of the firmware is visible below 1 MiB (the legacy BIOS window). */
export const LOW_BIOS_WINDOW = 128 * 1024;

export type StopReason = 'halt' | 'triple-fault' | 'running';

export interface MachineState {
  cpu: CpuState;
  fpu: FpuState;
  ram: Uint8Array;
  post: { last: number };
  stopReason: StopReason;
}

export class Machine {
  readonly mem: PhysicalMemory;
  readonly io: IoPorts;
  readonly cpu: Cpu;
  stopReason: StopReason = 'running';
  /** The exception chain of a triple fault. */
  tripleFaultChain = '';

  constructor(cfg: MachineConfig) {
    const bios = cfg.bios;
    if (bios.length === 0) throw new MachineConfigError('the BIOS image is empty');
    if (bios.length > MAX_BIOS_BYTES) {
      throw new MachineConfigError(`the BIOS image is ${bios.length} bytes; the most a PC maps is ${MAX_BIOS_BYTES} bytes (16 MiB)`);
    }
    const romBytes = Math.ceil(bios.length / 4096) * 4096;
    this.mem = new PhysicalMemory(cfg.memoryBytes, romBytes);
    this.io = new IoPorts();
    this.cpu = new Cpu(this.mem, this.io);
    this.cpu.fpu = new Fpu(this.cpu.fpuBus);

    // firmware: top of the 4 GiB space, and its last 128 KiB ending at 1 MiB
    const host = this.mem.addRom((0x100000000 - romBytes) | 0, padTo(bios, romBytes));
    const low = Math.min(romBytes, LOW_BIOS_WINDOW);
    this.mem.mapHost(0x100000 - low, host + romBytes - low, low, 1 /* PageFlag.READONLY */);

    if (cfg.debugcon) new DebugCon('debugcon', this.io, 0xe9, cfg.debugcon);
    this.post = new PostCodePort('post', this.io, cfg.postcodes ?? null);
    this.cpu.reset();
  }

  private readonly post: PostCodePort;

  /** The whole machine state (a copy: later execution does not change it). */
  saveState(): MachineState {
    return {
      cpu: saveCpuState(this.cpu),
      fpu: (this.cpu.fpu as Fpu).saveState(),
      ram: this.mem.mem.slice(0, this.mem.ramSize),
      post: this.post.saveState(),
      stopReason: this.stopReason,
    };
  }

  /** Load a state saved from a machine with the same configuration. Checks sizes before changing anything. */
  loadState(s: MachineState): void {
    if (!(s.ram instanceof Uint8Array) || s.ram.length !== this.mem.ramSize) {
      throw new StateError(`machine: the state holds ${s.ram?.length} bytes of RAM; this machine has ${this.mem.ramSize}`);
    }
    loadCpuState(this.cpu, s.cpu);
    (this.cpu.fpu as Fpu).loadState(s.fpu);
    this.mem.mem.set(s.ram, 0);
    this.post.loadState(s.post);
    this.stopReason = s.stopReason;
  }

  /**
   * Run up to `budget` instructions. Returns the stop reason: 'halt' once the CPU
   * halts with interrupts disabled (nothing can wake it), 'triple-fault' on shutdown.
   */
  runSlice(budget: number): StopReason {
    if (this.stopReason !== 'running') return this.stopReason;
    try {
      this.cpu.run(budget);
    } catch (e) {
      if (e instanceof TripleFault) {
        this.tripleFaultChain = e.chain;
        this.stopReason = 'triple-fault';
        return this.stopReason;
      }
      throw e;
    }
    if (this.cpu.halted && (this.cpu.flags & 0x200) === 0 && !this.cpu.nmiPending) this.stopReason = 'halt';
    return this.stopReason;
  }
}

function padTo(data: Uint8Array, size: number): Uint8Array {
  if (data.length === size) return data;
  // a ROM not a multiple of 4 KiB is aligned to the top of its pages, as flash is mapped
  const out = new Uint8Array(size).fill(0xff);
  out.set(data, size - data.length);
  return out;
}

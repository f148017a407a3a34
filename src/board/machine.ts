/**
 * The PC: an i440FX/PIIX3 machine as QEMU's `pc` presents it. Memory map,
 * device wiring in one readable function (wire()), firmware or direct Linux
 * boot, and the run loop that advances virtual time with execution.
 */
import { assert } from '../base/assert.js';
import { DEFAULT_RTC_EPOCH } from './rtc-epoch.js';
import { PageFlag, PhysicalMemory } from '../bus/memory.js';
import { IoPorts } from '../bus/ports.js';
import { PhysicalMemoryDmaView } from '../bus/dma.js';
import type { IrqLine } from '../bus/irq.js';
import { Cpu } from '../cpu/cpu.js';
import { ApicBase } from '../cpu/consts.js';
import { TripleFault } from '../cpu/fault.js';
import { defaultAccel, type AccelConfig } from '../jit/accel.js';
import { BlockCache } from '../jit/blocks.js';
import { WasmCache } from '../jit/wasm-tier.js';
import { Wasm, WASM_PAGE, type WasmMemory } from '../jit/wasm/host.js';
import { Layout, layoutBytes } from '../bus/layout.js';
import { Fpu, type FpuState } from '../cpu/fpu.js';
import { checkCpuState, loadCpuState, saveCpuState, type CpuState } from '../cpu/state.js';
import { Clock } from '../time/clock.js';
import { checkState, StateError, type StateObject } from '../state/state.js';
import { checkDeclared, loadDeclared, saveDeclared, type StateSchema } from '../state/schema.js';
import type { BlockBackend, CharSink, NetBackend, NetBackendStatus } from '../devices/backends.js';
import { E1000 } from '../devices/e1000/e1000.js';
import { Ne2kPci } from '../devices/ne2k.js';
import { IdeController } from '../devices/ata/ide.js';
import { DebugCon } from '../devices/debugcon.js';
import { PostCodePort } from '../devices/postcode.js';
import { I8259Pair } from '../devices/i8259.js';
import { LocalApic, LAPIC_MMIO_BYTES } from '../devices/apic/lapic.js';
import { IoApic, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_BYTES } from '../devices/apic/ioapic.js';
import { I8254 } from '../devices/i8254.js';
import { Port61 } from '../devices/port61.js';
import { Mc146818 } from '../devices/mc146818.js';
import { Uart16550 } from '../devices/uart16550.js';
import { Port92 } from '../devices/port92.js';
import { I8042 } from '../devices/i8042.js';
import { StdVga, STDVGA_DEFAULT_VRAM_BYTES } from '../devices/vga/stdvga.js';
import { StdVgaPci } from '../devices/vga/pci.js';
import { setTextMode03h, TEXT_MODE_03H } from '../devices/vga/textmode.js';
export { findFont8x16 } from '../devices/vga/textmode.js';
import { Ps2Keyboard } from '../devices/ps2kbd.js';
import { Ps2Mouse } from '../devices/ps2mouse.js';
import { FwCfg, FwCfgKey, e820Table, le16, le32, le64 } from '../devices/fwcfg.js';
import { PciHost, pirqForPin } from '../devices/pci/host.js';
import { PciCfg } from '../devices/pci/device.js';
import { I440fx, PAM_REGIONS } from '../devices/pci/i440fx.js';
import { IDETIM_IDE_ENABLE, Piix3, Piix3Ide, Piix3IdeReg } from '../devices/pci/piix3.js';
import { Piix4Pm } from '../devices/pci/piix4pm.js';
import { loadLinux, e820Map, type LinuxImages } from './linuxboot.js';
import { setupCmos } from './cmos.js';
import { buildAcpiTables, PM_BASE, SCI_IRQ } from './acpi.js';
import { buildMpTables, type PciIrq } from './mptable.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioNet } from '../devices/virtio/net.js';
import type { VirtioPci } from '../devices/virtio/pci.js';
import { wireVirtio } from './virtio.js';

export interface MachineConfig {
  /** Guest RAM in bytes. */
  memoryBytes: number;
  /** Firmware image, mapped at the top of the 4 GiB space with its last 128 KiB below 1 MiB. */
  bios?: Uint8Array;
  /** VGA option ROM handed to the firmware (fw_cfg "vgaroms/"). */
  vgaBios?: Uint8Array;
  /**
   * The 8×16 font (4096 bytes) for the VGA text mode a direct Linux boot
   * without firmware sets up (BIOS mode 03h), so vgacon has a screen;
   * without it the VGA stays as at power-on and Linux has no VGA console.
   */
  vgaFont?: Uint8Array;
  /** Direct Linux boot instead of (or, with a BIOS, ahead of) firmware. */
  linux?: LinuxImages;
  /** Where bytes written to the debug console go: Bochs' port 0xE9 and QEMU's 0x402 (SeaBIOS's log). */
  debugcon?: CharSink;
  /** Where POST codes written to port 0x80 go (as hex lines). */
  postcodes?: CharSink;
  /** COM1..COM4 output; a missing entry leaves that port's output unconnected. */
  serial?: (CharSink | undefined)[];
  /** RTC time at power-on, seconds since 1970 (default: a fixed date, for reproducible runs). */
  rtcEpochSec?: number;
  /** Boot device order for the firmware: 'c' hard disk, 'd' CD-ROM (default 'cd'). */
  boot?: string;
  /** IDE primary master and slave disks and the CD-ROM on the secondary master. */
  hda?: BlockBackend;
  hdb?: BlockBackend;
  cdrom?: BlockBackend;
  /** Network cards, each on the first free PCI slot from 00:03.0 (QEMU's first free slot on pc). */
  nics?: NicConfig[];
  /** Virtio devices (blk, net, console, rng, 9p), each on its own PCI slot from 00:03.0 on. */
  virtio?: VirtioDevice[];
  /** Execution tier and compile threshold (jit/accel.ts); default: wasm at the default threshold, or TSVM_CPU_BLOCKS. */
  accel?: AccelConfig;
}

/** One NIC: its model, station address and the network backend its cable goes to. */
export interface NicConfig {
  /** The Intel 82540EM, a virtio-net device on the virtio PCI transport, or an NE2000 (RTL8029). */
  model: 'e1000' | 'virtio-net-pci' | 'ne2k_pci';
  /** Six bytes; default 52:54:00:12:34:(56 + index), as QEMU numbers them. */
  mac?: Uint8Array;
  backend: NetBackend;
}

/** The first PCI slot given to NICs. */
export const NIC_FIRST_SLOT = 3;

export class MachineConfigError extends Error {}
/** The other errors building a machine can throw (memory layout, direct Linux boot). */
export { MemoryConfigError } from '../bus/memory.js';
export { LinuxBootError } from './linuxboot.js';

/** The most one WebAssembly memory (32-bit) holds: 65536 pages of 64 KiB. */
const MAX_STATE_BYTES = 65536 * 65536;

/** Largest firmware image accepted: a 16 MiB flash chip, the largest the PC map reserves. */
export const MAX_BIOS_BYTES = 16 * 1024 * 1024;
/** How much of the firmware is visible below 1 MiB (the legacy BIOS window). */
export const LOW_BIOS_WINDOW = 128 * 1024;
/**
 * Guest time per instruction: the virtual CPU is a nominal 50 MHz part, one
 * instruction per cycle (the TSC counts instructions). Chosen so that guest
 * time runs close to wall time at the interpreter's speed: firmware and
 * kernels busy-wait in places (delays measured with the TSC or the PIT), and
 * a faster nominal clock would make those waits cost more host time.
 */
export const NS_PER_INSTRUCTION = 20;
/** How long devices run on after a halt with interrupts off before the machine stops (a UART at 9600 baud sends 16 bytes in 17 ms). */
const HALT_DRAIN_NS = 50e6;
export { DEFAULT_RTC_EPOCH };
const NOTHING = new Uint8Array(0);
/** ACPI and MP tables for direct boot go in the 1 KiB the e820 map reserves below 640 KiB. */
const ACPI_TABLES_ADDR = 0x9fc00;
const ACPI_TABLES_END = 0xa0000;
/** PIIX4 PM configuration registers: PM I/O base, and its enable (PMIOSE). */
const PIIX4_PMBA = 0x40;
const PIIX4_PMREGMISC = 0x80;
/** PIIX3 ELCR2: edge/level control of IRQ 8-15. */
const ELCR2_PORT = 0x4d1;

export type StopReason = 'halt' | 'triple-fault' | 'poweroff' | 'running';

/** Bumped whenever the layout below changes; a state of another version is refused. */
export const MACHINE_STATE_VERSION = 2;

export interface MachineState {
  version: number;
  cpu: CpuState;
  fpu: FpuState;
  ram: Uint8Array;
  /** Guest time; device timers are saved as deadlines on it. */
  clock: { nowNs: number };
  a20: boolean;
  /** Every device's declared state, by device id. */
  devices: Record<string, object>;
  stopReason: StopReason;
  resets: number;
}

export class Machine {
  readonly mem: PhysicalMemory;
  readonly io: IoPorts;
  readonly cpu: Cpu;
  /** The machine's state (bus/layout.ts): RAM, ROMs, the TLB and the registers, shared with compiled code. */
  readonly stateMemory: WasmMemory;
  /** The compiled tier (src/jit), null when the machine runs the interpreter alone (-accel tsvm,tier=interp). */
  readonly jit: BlockCache | WasmCache | null;
  readonly clock = new Clock();
  stopReason: StopReason = 'running';
  /** The exception chain of a triple fault. */
  tripleFaultChain = '';
  readonly config: MachineConfig;

  // devices (wired in wire())
  pic!: I8259Pair;
  lapic!: LocalApic;
  ioapic!: IoApic;
  pit!: I8254;
  rtc!: Mc146818;
  serial: Uart16550[] = [];
  kbc!: I8042;
  vga!: StdVga;
  ide!: IdeController;
  ideFn!: Piix3Ide;
  keyboard!: Ps2Keyboard;
  mouse!: Ps2Mouse;
  pci!: PciHost;
  northBridge!: I440fx;
  southBridge!: Piix3;
  pm!: Piix4Pm;
  fwcfg!: FwCfg;
  nics: (E1000 | Ne2kPci)[] = [];
  private _netBackends: NetBackend[] = [];
  /** Every NIC with its model, address and backend, in configuration order (for `info network`). */
  private readonly _nicInfo: { model: NicConfig['model']; mac: Uint8Array; dev: { rxDropped: number }; backend: NetBackend }[] = [];
  /** True while cpu.run() executes a slice (a wake then ends the slice early). */
  private _inSlice = false;
  /** Guest time a halt with interrupts off began (the drain before the 'halt' stop), or -1. */
  private _deadHaltNs = -1;
  /**
   * Called when host input waits for the next slice boundary (a network
   * backend queued a frame, a NIC gained receive room). The runner sets it
   * to end its idle sleep, so the input enters at once instead of after the
   * pacing delay.
   */
  onHostInput: (() => void) | null = null;
  /**
   * How far (guest ns) a halted CPU's idle skip may go. Infinity (the
   * default): straight to the next timer deadline, idle time costing nothing.
   * The VM runner sets it to the guest time that matches the wall clock (plus
   * a little), so an idle guest waits for its next timer in wall time and a
   * frame arriving meanwhile is taken at the time it arrived, not at a
   * deadline the guest's clock has already jumped to (a guest TCP's
   * retransmission timer firing before the ACK it waits for had a chance to
   * come, a ping's reply stamped at the next tick).
   */
  idleHorizonNs = Infinity;
  virtio: VirtioPci[] = [];
  private post!: PostCodePort;
  /** Every device, in creation order, for reset. */
  private readonly _devices: { reset(): void }[] = [];
  /**
   * Devices with declared state, in load order: interrupt controllers last, so
   * the input levels they restore are not disturbed by devices restoring
   * their outputs before them.
   */
  private readonly _stateful: DeviceEntry[] = [];
  private readonly _statefulLate: DeviceEntry[] = [];
  /** Add a device with its declared state (the schema is required: a device cannot be left out of saves). */
  private _add<T extends { reset(): void; readonly id: string }>(d: T, schema: StateSchema, interruptController = false): T {
    this._devices.push(d);
    (interruptController ? this._statefulLate : this._stateful).push({ id: d.id, schema, device: d });
    return d;
  }
  /** Where the local APIC page is mapped (-1: not mapped) and the mapping it covers there. */
  private _apicPage = -1;
  private _underApic: [number, number] = [0, -1];
  private _biosHost = -1;
  private _biosBytes = 0;
  private _resetRequested = false;
  private _a20 = true;
  /** How many times the machine has been reset since power-on (guest reboots). */
  resets = 0;

  constructor(cfg: MachineConfig) {
    this.config = cfg;
    const bios = cfg.bios;
    if (bios && bios.length === 0) throw new MachineConfigError('the BIOS image is empty');
    if (bios && bios.length > MAX_BIOS_BYTES) {
      throw new MachineConfigError(`the BIOS image is ${bios.length} bytes; the most a PC maps is ${MAX_BIOS_BYTES} bytes (16 MiB)`);
    }
    if (!bios && !cfg.linux) throw new MachineConfigError('nothing to run: the machine has neither firmware nor a kernel');
    const romBytes = bios ? Math.ceil(bios.length / 4096) * 4096 : 0;
    // RAM, ROMs, the TLB and the registers in one WebAssembly.Memory (bus/layout.ts)
    const memBytes = cfg.memoryBytes + romBytes + STDVGA_DEFAULT_VRAM_BYTES;
    if (layoutBytes(memBytes) > MAX_STATE_BYTES) {
      throw new MachineConfigError(`RAM, firmware and VRAM come to ${memBytes / 1048576} MiB, more than the ${(MAX_STATE_BYTES - Layout.RAM) / 1048576} MiB one WebAssembly memory holds`);
    }
    const pages = Math.ceil(layoutBytes(memBytes) / WASM_PAGE);
    this.stateMemory = new Wasm.Memory({ initial: pages, maximum: pages });
    this.mem = new PhysicalMemory(cfg.memoryBytes, romBytes + STDVGA_DEFAULT_VRAM_BYTES, this.stateMemory.buffer);
    this.io = new IoPorts();
    this.cpu = new Cpu(this.mem, this.io, this.stateMemory.buffer);
    const accel = cfg.accel ?? defaultAccel();
    this.jit = accel.tier === 'interp' ? null : accel.tier === 'wasm' ? new WasmCache(this.cpu, this.stateMemory, accel.threshold, undefined, accel.hot) : new BlockCache(this.cpu, accel.threshold);
    this.cpu.codeCache = this.jit;
    this.cpu.fpu = new Fpu(this.cpu.fpuBus);

    if (bios) {
      // firmware: top of the 4 GiB space, and its last 128 KiB ending at 1 MiB
      this._biosBytes = romBytes;
      this._biosHost = this.mem.addRom((0x100000000 - romBytes) | 0, padTo(bios, romBytes));
      const low = Math.min(romBytes, LOW_BIOS_WINDOW);
      this.mem.mapHost(0x100000 - low, this._biosHost + romBytes - low, low, PageFlag.READONLY);
    }
    this.wire();
    this.powerOn();
  }

  /** Create every device and connect it: the whole PC in one place. */
  private wire(): void {
    const cfg = this.config;
    const { io, clock, cpu } = this;
    const ramSize = this.mem.ramSize;

    clock.attachCounter(() => cpu.instructionCount(), NS_PER_INSTRUCTION);
    // a device arming a timer before the end of the running slice ends the slice there
    clock.onEarlierDeadline = () => {
      cpu.stopRequested = true;
    };
    // Interrupts as on QEMU's pc: the 8259 pair's INT goes to the local APIC's LINT0 (and
    // straight to the CPU while the APIC is disabled); the local APIC drives the CPU's INTR.
    this.lapic = this._add(
      new LocalApic('lapic', {
        clock,
        onIntr: (level) => (cpu.intrLine = level),
        picAcknowledge: () => this.pic.acknowledge(),
        onNmi: () => (cpu.nmiPending = true),
        onEoiBroadcast: (vector) => this.ioapic.eoi(vector),
      }),
      LocalApic.stateSchema,
      true,
    );
    this.pic = this._add(new I8259Pair('pic', { ports: io, onIntr: (level) => this.lapic.setPicIntr(level) }), I8259Pair.stateSchema, true);
    this.ioapic = this._add(
      new IoApic('ioapic', {
        deliver: (vector, mode, level, logical, dest) => this.lapic.deliver(vector, mode, level, logical, dest),
        extIntAcknowledge: () => this.pic.acknowledge(),
      }),
      IoApic.stateSchema,
      true,
    );
    this.mem.addMmio(IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_BYTES, this.ioapic.mmio);
    cpu.pic = { acknowledge: () => this.lapic.acknowledge() };
    cpu.apic = { apicBaseChanged: () => this.syncApicBase() };
    // An ISA IRQ goes to the 8259 input and to the I/O APIC pin of the same number, except
    // IRQ0 (the PIT), which is on pin 2 (the MADT's interrupt source override says so).
    // ISA IRQ2 is the cascade: on the bus it is IRQ9, as the 8259 pair maps it.
    const irq = (n: number): IrqLine => {
      const picIn = this.pic.input(n);
      const pin = this.ioapic.input(n === 0 ? 2 : n === 2 ? 9 : n);
      return {
        set: (level) => {
          picIn.set(level);
          pin.set(level);
        },
      };
    };
    this.pit = this._add(new I8254('pit', { ports: io, clock, irq: irq(0) }), I8254.stateSchema);
    this._add(new Port61('port61', { ports: io, clock, timer: this.pit }), Port61.stateSchema);
    this.rtc = this._add(new Mc146818('rtc', { ports: io, clock, irq: irq(8), epochSec: cfg.rtcEpochSec ?? DEFAULT_RTC_EPOCH }), Mc146818.stateSchema);
    const comPorts: [number, number][] = [
      [0x3f8, 4],
      [0x2f8, 3],
      [0x3e8, 4],
      [0x2e8, 3],
    ];
    this.serial = comPorts.map(([base, n], i) => this._add(new Uart16550(`com${i + 1}`, io, base, irq(n), clock, cfg.serial?.[i] ?? { write() {} }), Uart16550.stateSchema));
    this.kbc = this._add(
      new I8042('i8042', io, irq(1), irq(12), {
        onA20: (on) => this.setA20(on),
        onReset: () => this.requestReset(),
      }),
      I8042.stateSchema,
    );
    this.keyboard = this._add(new Ps2Keyboard('kbd', clock, this.kbc.kbdPort), Ps2Keyboard.stateSchema);
    this.mouse = this._add(new Ps2Mouse('mouse', this.kbc.auxPort), Ps2Mouse.stateSchema);
    const port92 = this._add(new Port92('port92', io), Port92.stateSchema);
    port92.onA20 = (on: boolean) => this.setA20(on);
    port92.onReset = () => this.requestReset();

    // PCI: host bridge 00.0, ISA bridge 00.1 (+ IDE 01.1, PM 01.3)
    this.pci = this._add(new PciHost('pci', io), PciHost.stateSchema);
    this.northBridge = this._add(new I440fx('i440fx', { ramSizeBytes: ramSize }), I440fx.stateSchema);
    this.northBridge.onPamChange = (region, re, we) => this.mapPam(region, re, we);
    this.pci.attach(0, 0, this.northBridge);
    const isaIrqs = Array.from({ length: 16 }, (_, n) => irq(n));
    this.southBridge = this._add(new Piix3('piix3', io, isaIrqs), Piix3.stateSchema);
    this.southBridge.onReset = () => this.requestReset();
    this.pci.attach(1, 0, this.southBridge);
    // PIRQA-D go to the PIIX3's steering (to ISA IRQs) and to I/O APIC pins 16-19, as QEMU wires them
    this.pci.setPirqRouter({
      setPirq: (pirq, level) => {
        this.southBridge.setPirq(pirq, level);
        if (pirq >= 0 && pirq < 4) this.ioapic.input(16 + pirq).set(level);
      },
    });
    this.ide = this._add(
      new IdeController('ide', {
        ports: io,
        clock,
        irqs: [irq(14), irq(15)],
        dma: new PhysicalMemoryDmaView(this.mem),
        drives: [
          cfg.hda ? { kind: 'disk', backend: cfg.hda } : null,
          cfg.hdb ? { kind: 'disk', backend: cfg.hdb } : null,
          { kind: 'cdrom', backend: cfg.cdrom ?? null },
          null,
        ],
      }),
      IdeController.stateSchema,
    );
    const ideFn = (this.ideFn = this._add(new Piix3Ide('piix3-ide'), Piix3Ide.stateSchema));
    ideFn.onBarChange = (bar, addr) => {
      if (bar === 4) this.ide.setBusMasterBase(addr);
    };
    this.pci.attach(1, 1, ideFn);
    this.pm = this._add(new Piix4Pm('piix4-pm', io, clock, irq(9)), Piix4Pm.stateSchema);
    this.pm.onPowerOff = () => this.powerOff();
    this.pci.attach(1, 3, this.pm);

    // VGA (QEMU's -vga std at 00:02.0): legacy window, MMIO BAR2, framebuffer BAR0 as plain memory
    const vramHost = this.mem.reserve(STDVGA_DEFAULT_VRAM_BYTES);
    this.vga = this._add(new StdVga('vga', io, clock, { vram: this.mem.mem.subarray(vramHost, vramHost + STDVGA_DEFAULT_VRAM_BYTES) }), StdVga.stateSchema);
    this.mem.addMmio(0xa0000, 0x20000, this.vga.mmioHandlers);
    const vgaPci = this._add(new StdVgaPci('vga-pci', this.vga), StdVgaPci.stateSchema);
    const mapped: [number, number][] = [
      [-1, 0],
      [-1, 0],
      [-1, 0],
    ];
    vgaPci.onBarChange = (bar, addr, size) => {
      if (bar !== 0 && bar !== 2) return;
      const [oldAddr, oldSize] = mapped[bar];
      if (oldAddr >= 0) this.mem.unmap(oldAddr, oldSize);
      mapped[bar] = [addr, size];
      if (addr < 0) return;
      if (bar === 0) this.mem.mapHost(addr, vramHost, Math.min(size, STDVGA_DEFAULT_VRAM_BYTES), 0);
      else this.mem.addMmio(addr, size, this.vga.mmioBarHandlers);
    };
    this.pci.attach(2, 0, vgaPci);

    // NICs in order (an e1000 takes its slot now, a virtio-net the first of the virtio slots), then the other virtio devices
    const virtioDevices: VirtioDevice[] = [];
    (cfg.nics ?? []).forEach((n, i) => (n.model === 'virtio-net-pci' ? virtioDevices.push(this.virtioNic(n, i)) : this.wireNic(n, i)));
    virtioDevices.push(...(cfg.virtio ?? []));
    for (const t of wireVirtio(virtioDevices, { mem: this.mem, pci: this.pci, lapic: () => this.lapic })) this.virtio.push(this._add(t, t.schema));

    // firmware configuration (what SeaBIOS learns the machine from)
    this.fwcfg = this._add(new FwCfg('fwcfg', io, new PhysicalMemoryDmaView(this.mem)), FwCfg.stateSchema);
    this.fwcfg.setItem(FwCfgKey.RAM_SIZE, le64(ramSize));
    this.fwcfg.setItem(FwCfgKey.NB_CPUS, le16(1));
    this.fwcfg.setItem(FwCfgKey.MAX_CPUS, le16(1));
    this.fwcfg.setItem(FwCfgKey.NOGRAPHIC, le16(0));
    this.fwcfg.setItem(FwCfgKey.BOOT_MENU, le16(0));
    // as QEMU: ISA IRQ0 is on I/O APIC pin 2, so SeaBIOS's MADT and MP table carry the override
    this.fwcfg.setItem(FwCfgKey.IRQ0_OVERRIDE, le32(1));
    // as QEMU: one RAM entry for all RAM below 4 GiB; the firmware reserves its own holes
    this.fwcfg.addFile('etc/e820', e820Table([{ address: 0, length: ramSize, type: 1 }]));
    this.fwcfg.addFile('etc/boot-fail-wait', le32(5));
    if (cfg.vgaBios) this.fwcfg.addFile('vgaroms/vgabios-stdvga.bin', cfg.vgaBios);

    if (cfg.debugcon) {
      new DebugCon('debugcon', io, 0xe9, cfg.debugcon);
      new DebugCon('debugcon-402', io, 0x402, cfg.debugcon);
    }
    this.post = this._add(new PostCodePort('post', io, cfg.postcodes ?? null), PostCodePort.stateSchema);
    setupCmos(this.rtc, ramSize, cfg.boot ?? 'cd');
    void NOTHING;
  }

  /** NIC `index`'s station address: the configured one, else 52:54:00:12:34:(56 + index) as QEMU numbers them. */
  private nicMac(n: NicConfig, index: number): Uint8Array {
    const mac = n.mac ?? Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + index]);
    if (mac.length !== 6) throw new MachineConfigError(`NIC ${index}: a MAC address has 6 bytes, not ${mac.length}`);
    return mac;
  }

  /** A virtio-net NIC: the device for the virtio transport, its cable to the backend. */
  private virtioNic(n: NicConfig, index: number): VirtioDevice {
    const dev = new VirtioNet(`virtio-net.${index}`, n.backend, this.nicMac(n, index));
    dev.setWake(this._netWake);
    this._netBackends.push(n.backend);
    this._nicInfo[index] = { model: n.model, mac: this.nicMac(n, index), dev, backend: n.backend };
    return dev;
  }

  /** An NE2000 on the first free PCI slot from 3: BAR 0 as I/O ports, its cable to the backend. */
  private wireNe2k(n: NicConfig, index: number): void {
    const nic = this._add(new Ne2kPci(`ne2k.${index}`, this.nicMac(n, index)), Ne2kPci.stateSchema);
    nic.onBarChange = (_bar, addr, size) => {
      if (nic.ioBase >= 0) this.io.unregister(nic.id, nic.ioBase, size);
      nic.ioBase = -1;
      if (addr >= 0 && this.io.isFree(nic.id, addr, size)) {
        nic.ioBase = addr;
        this.io.register(nic.id, addr, size, nic.ioPorts);
      }
    };
    this.plugNic(nic, n, index);
  }

  /** Put a NIC on the first free PCI slot from 3 and connect its cable. */
  private plugNic(nic: E1000 | Ne2kPci, n: NicConfig, index: number): void {
    let slot = NIC_FIRST_SLOT;
    while (slot < 32 && this.pci.deviceAt(slot, 0)) slot++;
    if (slot >= 32) throw new MachineConfigError(`no free PCI slot for NIC ${index}`);
    this.pci.attach(slot, 0, nic);
    nic.backend = n.backend;
    nic.wake = this._netWake;
    n.backend.attach(nic, this._netWake);
    this.nics.push(nic);
    this._netBackends.push(n.backend);
    this._nicInfo[index] = { model: n.model, mac: this.nicMac(n, index), dev: nic, backend: n.backend };
  }

  /** A NIC on the first free PCI slot from 3: BAR 0 as MMIO, BAR 1 as I/O ports, its cable to the backend. */
  private wireNic(n: NicConfig, index: number): void {
    if (n.model === 'ne2k_pci') {
      this.wireNe2k(n, index);
      return;
    }
    const mac = this.nicMac(n, index);
    const nic = this._add(new E1000(`e1000.${index}`, { mac, dma: new PhysicalMemoryDmaView(this.mem) }), E1000.stateSchema);
    let mmio: [number, number] = [-1, 0];
    nic.onBarChange = (bar, addr, size) => {
      if (bar === 0) {
        if (mmio[0] >= 0) this.mem.unmap(mmio[0], mmio[1]);
        mmio = [addr, size];
        if (addr >= 0) this.mem.addMmio(addr, size, nic.mmio);
      } else if (bar === 1) {
        if (nic.ioBase >= 0) this.io.unregister(nic.id, nic.ioBase, size);
        nic.ioBase = -1;
        if (addr >= 0 && this.io.isFree(nic.id, addr, size)) {
          nic.ioBase = addr;
          this.io.register(nic.id, addr, size, nic.ioPorts);
        }
      }
    };
    this.plugNic(nic, n, index);
  }

  /** The INTx pins of the add-in cards (slot 3 on), for the MP table Linux routes PCI interrupts by. */
  private pciIrqs(): PciIrq[] {
    const out: PciIrq[] = [];
    for (let slot = NIC_FIRST_SLOT; slot < 32; slot++) {
      const d = this.pci.deviceAt(slot, 0);
      const pin = d ? d.config[PciCfg.INTERRUPT_PIN] : 0;
      if (pin >= 1 && pin <= 4) out.push({ slot, pin, ioapicPin: 16 + pirqForPin(slot, pin) });
    }
    return out;
  }

  /**
   * A NIC or network backend asks for a deliver() at the next slice
   * boundary. Inside a slice (a NIC's doorbell, a frame the NAT answers at
   * once) the slice ends after the current block, so the frame goes in
   * without waiting out the slice's budget; from a host callback between
   * slices the runner is woken from its idle sleep. Input still enters only
   * at slice boundaries: this only moves the next boundary closer.
   */
  private readonly _netWake = (): void => {
    if (this._inSlice) this.cpu.stopRequested = true;
    else this.onHostInput?.();
  };

  /**
   * Each NIC, its backend and where frames for it were dropped (QEMU's `info
   * network`, with counters): `queued` frames wait in the backend for room in
   * the guest's receive ring (backpressure, not loss); `backendDropped` were
   * lost in the backend's queue, `nicDropped` reached a NIC with no room.
   */
  networkInfo(): { index: number; model: string; mac: string; backend: NetBackendStatus; nicDropped: number }[] {
    return this._nicInfo.map((n, index) => ({
      index,
      model: n.model,
      mac: Array.from(n.mac, (b) => b.toString(16).padStart(2, '0')).join(':'),
      backend: n.backend.status?.() ?? { kind: 'unknown', queued: 0, dropped: 0 },
      nicDropped: n.dev.rxDropped,
    }));
  }

  /** Host input at a slice boundary: frames waiting in the network backends go to their NICs. */
  private deliverHostInput(): void {
    const b = this._netBackends;
    for (let i = 0; i < b.length; i++) b[i].deliver();
  }

  /** Power on (or hard reset): CPU and devices to their reset state, firmware or kernel loaded. */
  private powerOn(): void {
    this.cpu.reset();
    for (const d of this._devices) d.reset();
    this.setA20(true);
    for (let r = 0; r < PAM_REGIONS.length; r++) this.mapPam(r, false, false);
    this.syncApicBase();
    if (this.config.linux && !this.config.bios) {
      // no firmware: do what it would for the kernel (ACPI and MP tables in the reserved EBDA page, PM block enabled)
      const acpi = buildAcpiTables(ACPI_TABLES_ADDR);
      this.mem.mem.set(acpi.bytes, ACPI_TABLES_ADDR);
      const mpAddr = ACPI_TABLES_ADDR + ((acpi.bytes.length + 15) & ~15);
      const mp = buildMpTables(mpAddr, this.pciIrqs());
      assert(mpAddr + mp.length <= ACPI_TABLES_END, 'the direct-boot ACPI and MP tables outgrew their 1 KiB');
      this.mem.mem.set(mp, mpAddr);
      this.pm.writeConfig(PIIX4_PMBA, PM_BASE | 1, 4);
      this.pm.writeConfig(PIIX4_PMREGMISC, 1, 1);
      // Both IDE channels' decode enable, as SeaBIOS's piix_ide_setup() writes it: Linux's
      // ata_piix reads IDETIM bit 15 and silently skips a channel whose decode is off.
      this.ideFn.writeConfig(Piix3IdeReg.IDETIM_PRI, IDETIM_IDE_ENABLE, 2);
      this.ideFn.writeConfig(Piix3IdeReg.IDETIM_SEC, IDETIM_IDE_ENABLE, 2);
      // The SCI our FADT declares is level-triggered (ACPI's SCI is shareable, active-low level):
      // mark it so in the ELCR, as firmware does, rather than leave Linux to fix it with a warning.
      this.io.write8[ELCR2_PORT](ELCR2_PORT, 1 << (SCI_IRQ - 8));
      // and the VGA BIOS's mode set: text mode 03h, which the boot protocol's screen_info then describes
      const font = this.config.vgaFont;
      if (font) setTextMode03h(this.vga.regs, this.vga.vram, font);
      loadLinux(this.mem, this.cpu, { ...this.config.linux, acpiRsdp: acpi.rsdp, vgaText: font ? TEXT_MODE_03H : undefined });
      this.mem.markWritten(0, this.mem.ramSize); // written around the TLB
    }
    this.stopReason = 'running';
  }

  /**
   * Make the local APIC follow IA32_APIC_BASE: its page mapped at the base
   * address while enabled (over whatever was there, which comes back when it
   * moves), unmapped and the APIC disabled when bit 11 is clear.
   */
  syncApicBase(): void {
    const v = this.cpu.apicBase;
    const enabled = (v & ApicBase.ENABLE) !== 0;
    const page = enabled ? (v & ApicBase.ADDRESS) >>> 0 : -1;
    this.lapic.setGlobalEnable(enabled);
    if (page === this._apicPage) return;
    if (this._apicPage >= 0) this.mem.restorePage(this._apicPage, this._underApic);
    this._apicPage = page;
    if (page < 0) return;
    this._underApic = this.mem.savePage(page);
    this.mem.addMmio(page, LAPIC_MMIO_BYTES, this.lapic.mmio);
  }

  /** A20 gate: when off, physical address bit 20 is forced to 0 (8086 wrap-around). */
  setA20(on: boolean): void {
    this._a20 = on;
    this.mem.a20Mask = on ? -1 : ~(1 << 20);
    this.cpu.flushTlb(true);
  }

  /** Map one PAM region: reads and writes go to DRAM when enabled, else to the BIOS ROM (or nothing). */
  private mapPam(region: number, readEnable: boolean, writeEnable: boolean): void {
    const { base, size } = PAM_REGIONS[region];
    const romBase = 0x100000 - Math.min(this._biosBytes, LOW_BIOS_WINDOW);
    const romHost = this._biosHost >= 0 && base >= romBase ? this._biosHost + this._biosBytes - (0x100000 - base) : -1;
    if (readEnable) {
      this.mem.mapHost(base, base, size, writeEnable ? 0 : PageFlag.READONLY);
    } else if (!writeEnable) {
      if (romHost >= 0) this.mem.mapHost(base, romHost, size, PageFlag.READONLY);
      else this.mem.addMmio(base, size, { read8: () => 0xff, write8: () => {} });
    } else {
      // write-only DRAM: reads come from the ROM (or nothing), writes go to RAM underneath
      const m = this.mem.mem;
      this.mem.addMmio(base, size, {
        read8: (a) => (romHost >= 0 ? m[romHost + (a - base)] : 0xff),
        write8: (a, v) => {
          m[a] = v;
          this.mem.dirtyPages[a >>> 12] = 1;
        },
      });
    }
  }

  requestReset(): void {
    this._resetRequested = true;
    this.cpu.stopRequested = true;
  }

  powerOff(): void {
    this.stopReason = 'poweroff';
    this.cpu.stopRequested = true;
  }

  /**
   * Run up to `budget` instructions, advancing guest time with them and firing
   * device timers. Returns the stop reason: 'halt' once the CPU halts with
   * interrupts disabled (nothing can wake it), 'triple-fault', 'poweroff', or
   * 'running'. A halted CPU with interrupts enabled skips ahead to the next
   * timer deadline (idle time costs nothing).
   */
  runSlice(budget: number): StopReason {
    if (this.stopReason !== 'running') return this.stopReason;
    this.deliverHostInput();
    const cpu = this.cpu;
    const clock = this.clock;
    if (cpu.halted) {
      if ((cpu.flags & 0x200) === 0 && !cpu.nmiPending) {
        // a dead halt: devices first finish what the guest gave them (a UART's last bytes), as
        // they would on a machine left running; guest time moves on at most HALT_DRAIN_NS
        const next = clock.nextDeadline();
        if (this._deadHaltNs < 0) this._deadHaltNs = clock.nowNs;
        if (next === Infinity || next - this._deadHaltNs > HALT_DRAIN_NS) {
          this._deadHaltNs = -1;
          this.stopReason = 'halt';
          return this.stopReason;
        }
        cpu.tscOffset += Math.round((next - clock.nowNs) / NS_PER_INSTRUCTION);
        clock.advanceTo(next);
        return this.stopReason;
      }
      if (!cpu.intrLine) {
        const next = Math.min(clock.nextDeadline(), this.idleHorizonNs);
        if (next === Infinity || next <= clock.nowNs) return this.stopReason; // waits for host input, or for the wall clock
        // the TSC keeps counting while the CPU idles (it measures time, not work)
        cpu.tscOffset += Math.round((next - clock.nowNs) / NS_PER_INSTRUCTION);
        clock.advanceTo(next);
        return this.stopReason;
      }
    }
    this._deadHaltNs = -1;
    const until = clock.nextDeadline();
    let n = budget;
    if (until !== Infinity) n = Math.max(1, Math.min(budget, Math.ceil((until - clock.nowNs) / NS_PER_INSTRUCTION)));
    clock.horizonNs = clock.nowNs + n * NS_PER_INSTRUCTION;
    this._inSlice = true;
    try {
      cpu.run(n);
    } catch (e) {
      if (e instanceof TripleFault) {
        this.tripleFaultChain = e.chain;
        this.stopReason = 'triple-fault';
        return this.stopReason;
      }
      throw e;
    } finally {
      this._inSlice = false;
      clock.horizonNs = Infinity;
    }
    clock.runDue();
    if (cpu.stopRequested) {
      cpu.stopRequested = false;
      if (this._resetRequested) {
        this._resetRequested = false;
        this.resets++;
        this.powerOn();
      }
    }
    // a halt with interrupts off is reported by the next call, once the devices have drained
    return this.stopReason;
  }

  /**
   * The whole machine state (a copy: later execution does not change it).
   * What the configuration decides (firmware, disks' contents, host sinks) is
   * not state: a state is loaded into a machine built with the same options.
   */
  saveState(): MachineState {
    return { ...this._saveWithoutRam(), ram: this.mem.mem.slice(0, this.mem.ramSize) };
  }

  private _saveWithoutRam(): Omit<MachineState, 'ram'> {
    const devices: Record<string, object> = {};
    for (const e of this.devices()) devices[e.id] = saveDeclared(e.schema, e.device);
    return {
      version: MACHINE_STATE_VERSION,
      cpu: saveCpuState(this.cpu),
      fpu: (this.cpu.fpu as Fpu).saveState(),
      clock: this.clock.saveState(),
      a20: this._a20,
      devices,
      stopReason: this.stopReason,
      resets: this.resets,
    };
  }

  /** Every device with declared state, in load order (interrupt controllers last). */
  devices(): readonly DeviceEntry[] {
    return [...this._stateful, ...this._statefulLate];
  }

  /**
   * Check a state without changing anything: version, RAM size, the device
   * set, and every declared device state against its schema. Throws StateError.
   */
  checkState(s: MachineState): void {
    if (typeof s !== 'object' || s === null) throw new StateError('machine: the state is not an object');
    this.checkStateWithoutRam(s, (s.ram as Uint8Array | undefined)?.length ?? -1);
    if (!(s.ram instanceof Uint8Array)) throw new StateError('machine: the state holds no RAM');
  }

  /** checkState() for a state whose RAM travels separately (a snapshot file's page stream) and holds `ramBytes`. */
  checkStateWithoutRam(s: Omit<MachineState, 'ram'>, ramBytes: number): void {
    if (typeof s !== 'object' || s === null) throw new StateError('machine: the state is not an object');
    if (s.version !== MACHINE_STATE_VERSION) {
      throw new StateError(`machine: the state is of version ${String(s.version)}; this tsvm reads version ${MACHINE_STATE_VERSION}`);
    }
    if (ramBytes !== this.mem.ramSize) {
      throw new StateError(`machine: the state holds ${ramBytes} bytes of RAM; this machine has ${this.mem.ramSize}`);
    }
    if (typeof s.devices !== 'object' || s.devices === null) throw new StateError('machine: the state has no devices');
    const all = this.devices();
    const ids = new Set(all.map((d) => d.id));
    for (const d of all) if (!(d.id in s.devices)) throw new StateError(`machine: the state has no device ${d.id}; was it saved with other options?`);
    for (const id of Object.keys(s.devices)) if (!ids.has(id)) throw new StateError(`machine: the state holds device ${id}, which this machine does not have`);
    for (const d of all) checkDeclared(d.id, d.schema, s.devices[d.id], d.device);
    checkCpuState(this.cpu, s.cpu);
    checkState('fpu', (this.cpu.fpu as Fpu).saveState(), s.fpu);
    if (typeof s.clock?.nowNs !== 'number' || !Number.isFinite(s.clock.nowNs) || s.clock.nowNs < 0) throw new StateError('machine: bad guest time in the state');
    if (typeof s.a20 !== 'boolean') throw new StateError('machine: field a20 must be a boolean');
  }

  /**
   * Load a state saved from a machine with the same configuration. A state
   * that does not fit (another version, RAM size or device set, or a field of
   * the wrong kind) is refused with a StateError and the machine is left as
   * it was: every device state is checked against its schema before
   * anything changes, so no rollback copy is needed. RAM is written last.
   */
  loadState(s: MachineState): void {
    this.checkState(s);
    this.loadStateWithoutRam(s, s.ram.length, (ram) => ram.set(s.ram));
  }

  /**
   * loadState() for a state whose RAM comes separately: after the devices
   * loaded, `writeRam` fills guest RAM (it must not throw: check its input first).
   */
  loadStateWithoutRam(s: Omit<MachineState, 'ram'>, ramBytes: number, writeRam: (ram: Uint8Array) => void): void {
    this.checkStateWithoutRam(s, ramBytes);
    this._load(s); // checked: it does not throw
    const kept = this._codePagesBefore();
    writeRam(this.mem.mem.subarray(0, this.mem.ramSize));
    // all of RAM was replaced: every page differs from whatever the last dirty mark saw
    this.mem.markWritten(0, this.mem.ramSize);
    this._dropChangedCode(kept);
    this.cpu.flushTlb(true);
  }

  /**
   * The RAM pages holding compiled code and a copy of their bytes, taken
   * before a load replaces RAM. Compiled code stays valid for a page whose
   * bytes the load leaves as they were: a snapshot loaded into the machine
   * it was taken from (loadvm) differs in a few pages, and recompiling the
   * kernel and the shell after every loadvm cost a quarter of a second.
   */
  private _codePagesBefore(): { pages: number[]; bytes: Int32Array } {
    const code = this.mem.codePages;
    const pages: number[] = [];
    for (let hp = 0, n = this.mem.ramSize >>> 12; hp < n; hp++) if (code[hp] !== 0) pages.push(hp);
    const bytes = new Int32Array(pages.length * 1024);
    pages.forEach((hp, i) => bytes.set(this.mem.mem32.subarray(hp * 1024, hp * 1024 + 1024), i * 1024));
    return { pages, bytes };
  }

  /** After RAM was replaced: compiled code from a page whose bytes changed is stale. */
  private _dropChangedCode(kept: { pages: number[]; bytes: Int32Array }): void {
    const cache = this.cpu.codeCache;
    if (!cache) return;
    const m32 = this.mem.mem32;
    kept.pages.forEach((hp, i) => {
      const at = hp * 1024;
      const old = i * 1024;
      for (let k = 0; k < 1024; k++) {
        if (m32[at + k] !== kept.bytes[old + k]) {
          cache.pageWritten(hp);
          return;
        }
      }
    });
  }

  /** The state without RAM (a copy), and guest RAM itself (a live view: copy or encode it before the machine runs on). */
  saveStateWithoutRam(): { state: Omit<MachineState, 'ram'>; ram: Uint8Array } {
    return { state: this._saveWithoutRam(), ram: this.mem.mem.subarray(0, this.mem.ramSize) };
  }

  private _load(s: Omit<MachineState, 'ram'>): void {
    this._deadHaltNs = -1;
    loadCpuState(this.cpu, s.cpu);
    this.syncApicBase();
    (this.cpu.fpu as Fpu).loadState(s.fpu);
    // guest time before the devices, whose timers are deadlines on it
    this.clock.loadState(s.clock);
    for (const d of this.devices()) loadDeclared(d.schema, d.device, s.devices[d.id] as StateObject);
    this.setA20(s.a20);
    this.stopReason = s.stopReason;
    this.resets = s.resets | 0;
    this._resetRequested = false;
  }
}

/** A device of the machine with the schema its state is declared by. */
export interface DeviceEntry {
  readonly id: string;
  readonly schema: StateSchema;
  readonly device: object;
}

function padTo(data: Uint8Array, size: number): Uint8Array {
  if (data.length === size) return data;
  // a ROM not a multiple of 4 KiB is aligned to the top of its pages, as flash is mapped
  const out = new Uint8Array(size).fill(0xff);
  out.set(data, size - data.length);
  return out;
}

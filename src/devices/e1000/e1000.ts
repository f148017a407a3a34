/**
 * Intel 82540EM Gigabit Ethernet controller (e1000), the NIC QEMU's `-nic
 * model=e1000` gives: PCI 8086:100E, class 02:00:00; BAR 0 = 128 KiB of
 * registers, BAR 1 = the 8-byte IOADDR/IODATA window onto the same registers
 * (Linux resets the 82540 through it); interrupts on INTA#.
 *
 * Modelled (8254x Software Developer's Manual, Intel 317453): the Microwire
 * EEPROM behind EECD and its EERD shortcut, the PHY behind MDIC, interrupt
 * cause/mask registers, receive address and multicast filters, legacy
 * receive descriptors, legacy and extended (context + data) transmit
 * descriptors with checksum insertion and TCP segmentation, the good-packet
 * statistics. Not modelled: interrupt moderation timers (every completion
 * interrupts at once), flow control, VLAN filtering, wake-up, diagnostics.
 *
 * Registers live in one Uint32Array indexed by offset/4, which is also their
 * saved state. Guest-controlled ring addresses and sizes are checked on
 * every access: a descriptor outside guest RAM stops that ring's processing
 * (the ring then makes no progress, as a real bus master error would leave
 * it) and a ring no larger than a descriptor is empty.
 */
import type { DmaView } from '../../bus/dma.js';
import type { MmioHandlers } from '../../bus/memory.js';
import type { PortHandlers } from '../../bus/ports.js';
import { bool, i32, struct, u16, u16s, u32, u32s, u8, u8s } from '../../state/schema.js';
import type { NetBackend, NetPort } from '../backends.js';
import { PciDevice, pciState } from '../pci/device.js';
import { emptyContext, insertChecksum, ipv4HeaderOk, ipv4L4Start, l4ChecksumOk, segment, type TxContext } from '../netoffload.js';
import {
  Ctrl, Eecd, Eerd, EEPROM_WORDS, eepromImage, Icr, Mdic, PHY_ADDR, phyResetValues, Popts, Rctl, Reg, RxErr, Rxcsum, RxStatus, STATUS_LINK_UP, Tctl, TuCmd, TxCmd,
} from './regs.js';

export const E1000_VENDOR = 0x8086;
export const E1000_DEVICE = 0x100e;
export const E1000_MMIO_BYTES = 0x20000;
export const E1000_IO_BYTES = 0x40;
const REG_WORDS = E1000_MMIO_BYTES / 4;
const DESC = 16;
/** The largest packet the transmit side assembles from descriptors (a TSO burst is at most 64 KiB plus headers). */
const TX_MAX = 0x10000 + 0x100;
/** Most frames buffered on the way in is the backend's business; this bounds one frame. */
const RX_MAX = 0x4000;

export interface E1000Options {
  /** The station address, stored in the EEPROM. */
  mac: Uint8Array;
  /** Bus-master access to guest memory. */
  dma: DmaView;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The Ethernet frame check sequence (CRC-32). */
export function ethernetFcs(p: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class E1000 extends PciDevice implements NetPort {
  /**
   * The registers (statistics included), the PHY's and the EEPROM's words,
   * the Microwire shift state, the I/O window's address latch, and the
   * transmit packet being assembled with its offload context. Version 2:
   * the context's fields by name, and txOverflow (a packet that overran the
   * buffer is dropped at its last descriptor), which version 1 lost.
   */
  static override readonly stateSchema = pciState<E1000>(
    'e1000',
    2,
    {
      regs: u32s(REG_WORDS),
      phy: u16s(32).at('_phy'),
      eeprom: u16s(EEPROM_WORDS).at('_eeprom'),
      eeBitsIn: u8.at('_eeBitsIn').range(0, 9),
      eeValIn: u16.at('_eeValIn').range(0, 0x1ff),
      eeBitOut: i32.at('_eeBitOut'),
      eeReading: bool.at('_eeReading'),
      eeOld: u32.at('_eeOld'),
      ioAddr: u32.at('_ioAddr'),
      txBuf: u8s(TX_MAX).at('_txBuf'),
      txLen: u32.at('_txLen').range(0, TX_MAX),
      txTse: bool.at('_txTse'),
      txPopts: u8.at('_txPopts'),
      txLegacyCso: i32.at('_txLegacyCso').range(-1, 0xff),
      txLegacyCss: u8.at('_txLegacyCss'),
      txOverflow: bool.at('_txOverflow'),
      ctx: struct({ ipcss: u8, ipcso: u8, ipcse: u16, tucss: u8, tucso: u8, tucse: u16, tucmd: u8, mss: u16, hdrlen: u8, paylen: u32.range(0, 0xfffff) }).at('_ctx'),
    },
    { transient: ['mac', 'backend', 'wake', 'rxDropped', 'mmio', 'ioPorts', 'ioBase', '_dma', '_desc'] },
  );
  readonly regs = new Uint32Array(REG_WORDS);
  readonly mac: Uint8Array;
  /** Where transmitted frames go (null: the cable is unplugged; frames vanish). */
  backend: NetBackend | null = null;
  /** Frames that came with no room in the receive ring (RXO; diagnostics, not state). */
  rxDropped = 0;
  /** Asks the board for a delivery at the next slice boundary (the receive ring gained room). */
  wake: () => void = () => {};
  readonly mmio: MmioHandlers;
  readonly ioPorts: PortHandlers;
  /** Where BAR 1 decodes (-1: nowhere); the board keeps it current. */
  ioBase = -1;
  private readonly _dma: DmaView;
  private _phy = phyResetValues();
  private readonly _eeprom: Uint16Array;
  private _eeBitsIn = 0;
  private _eeValIn = 0;
  private _eeBitOut = 0;
  private _eeReading = false;
  private _eeOld = 0;
  private _ioAddr = 0;
  private readonly _txBuf = new Uint8Array(TX_MAX);
  private _txLen = 0;
  private _txTse = false;
  private _txPopts = 0;
  private _txLegacyCso = 0;
  private _txLegacyCss = 0;
  private _txOverflow = false;
  private _ctx: TxContext = emptyContext();
  private readonly _desc = new Uint8Array(DESC);

  constructor(id: string, opts: E1000Options) {
    super(id, { vendorId: E1000_VENDOR, deviceId: E1000_DEVICE, classCode: 0x020000, revision: 3, interruptPin: 1 }, [
      { size: E1000_MMIO_BYTES },
      { size: E1000_IO_BYTES, io: true },
    ]);
    if (opts.mac.length !== 6) throw new RangeError(`${id}: a MAC address has 6 bytes`);
    this.mac = opts.mac.slice();
    this._dma = opts.dma;
    this._eeprom = eepromImage(this.mac, E1000_DEVICE);
    this.mmio = {
      read8: (a) => (this.readReg(a & ~3 & (E1000_MMIO_BYTES - 1)) >>> ((a & 3) * 8)) & 0xff,
      write8: (a, v) => this._writePart(a, v, 0xff),
      read16: (a) => (this.readReg(a & ~3 & (E1000_MMIO_BYTES - 1)) >>> ((a & 2) * 8)) & 0xffff,
      write16: (a, v) => this._writePart(a, v, 0xffff),
      read32: (a) => this.readReg(a & (E1000_MMIO_BYTES - 4)),
      write32: (a, v) => this.writeReg(a & (E1000_MMIO_BYTES - 4), v >>> 0),
    };
    // IOADDR (offset 0) selects a register, IODATA (offset 4) reads or writes it
    this.ioPorts = {
      read32: (p) => ((p - this.ioBase) & 0x3f) === 0 ? this._ioAddr : ((p - this.ioBase) & 0x3f) === 4 ? this.readReg(this._ioAddr & (E1000_MMIO_BYTES - 4)) : 0xffffffff,
      write32: (p, v) => {
        const off = (p - this.ioBase) & 0x3f;
        if (off === 0) this._ioAddr = v >>> 0;
        else if (off === 4) this.writeReg(this._ioAddr & (E1000_MMIO_BYTES - 4), v >>> 0);
      },
      read8: () => 0xff,
      read16: () => 0xffff,
    };
    this._resetRegisters();
  }

  // ---- registers ----

  private _writePart(a: number, v: number, mask: number): void {
    const off = a & ~3 & (E1000_MMIO_BYTES - 1);
    const sh = (a & 3) * 8;
    const old = this.regs[off >>> 2];
    this.writeReg(off, ((old & ~(mask << sh)) | ((v & mask) << sh)) >>> 0);
  }

  readReg(off: number): number {
    const r = this.regs;
    const i = off >>> 2;
    switch (off) {
      case Reg.ICR: {
        const v = r[i];
        r[i] = 0;
        this._updateIrq();
        return v >>> 0;
      }
      case Reg.EECD: {
        let v = (this._eeOld & (Eecd.SK | Eecd.CS | Eecd.DI | Eecd.REQ)) | Eecd.PRES;
        if (this._eeOld & Eecd.REQ) v |= Eecd.GNT;
        if (this._eeDo()) v |= Eecd.DO;
        return v >>> 0;
      }
      case Reg.ICS:
      case Reg.IMC:
        return 0;
      default:
        if (off >= Reg.STATS && off < Reg.STATS_END) {
          const v = r[i];
          r[i] = 0;
          return v >>> 0;
        }
        return r[i] >>> 0;
    }
  }

  writeReg(off: number, v: number): void {
    const r = this.regs;
    const i = off >>> 2;
    switch (off) {
      case Reg.CTRL:
        if (v & Ctrl.RST) {
          this._resetRegisters();
          this._updateIrq();
          return;
        }
        r[i] = v & ~Ctrl.PHY_RST;
        return;
      case Reg.STATUS:
        return;
      case Reg.EECD:
        this._eecdWrite(v);
        return;
      case Reg.EERD: {
        if (!(v & Eerd.START)) {
          r[i] = v & ~Eerd.DONE;
          return;
        }
        const addr = (v >>> 8) & 0xff;
        const data = addr < EEPROM_WORDS ? this._eeprom[addr] : 0;
        r[i] = ((data << 16) | (addr << 8) | Eerd.DONE) >>> 0;
        return;
      }
      case Reg.MDIC:
        r[i] = this._mdic(v);
        return;
      case Reg.ICR:
        // writing ones clears causes
        r[i] &= ~v;
        this._updateIrq();
        return;
      case Reg.ICS:
        r[Reg.ICR >>> 2] |= v;
        this._updateIrq();
        return;
      case Reg.IMS:
        r[Reg.IMS >>> 2] |= v;
        this._updateIrq();
        return;
      case Reg.IMC:
        r[Reg.IMS >>> 2] &= ~v;
        this._updateIrq();
        return;
      case Reg.RCTL: {
        const was = r[i];
        r[i] = v;
        if (v & Rctl.EN && !(was & Rctl.EN)) this.wake();
        return;
      }
      case Reg.RDT:
        r[i] = v & 0xffff;
        this.wake();
        return;
      case Reg.RDH:
      case Reg.TDH:
        r[i] = v & 0xffff;
        return;
      case Reg.RDLEN:
      case Reg.TDLEN:
        r[i] = v & 0xfff80;
        return;
      case Reg.TDT:
        r[i] = v & 0xffff;
        this._transmit();
        return;
      case Reg.TCTL:
        r[i] = v;
        this._transmit();
        return;
      default:
        if (off >= Reg.STATS && off < Reg.STATS_END) return;
        r[i] = v;
    }
  }

  // ---- EEPROM (Microwire, 64 words: 1 start bit, 2-bit opcode, 6 address bits, 16 data bits out) ----

  private _eecdWrite(v: number): void {
    const old = this._eeOld;
    this._eeOld = v & (Eecd.SK | Eecd.CS | Eecd.DI | Eecd.REQ);
    if (!(v & Eecd.CS)) {
      this._eeBitsIn = 0;
      this._eeValIn = 0;
      this._eeReading = false;
      return;
    }
    if (!(v & Eecd.SK) || old & Eecd.SK) return; // act on rising clock edges only
    if (this._eeReading) {
      this._eeBitOut++;
      return;
    }
    this._eeValIn = ((this._eeValIn << 1) | (v & Eecd.DI ? 1 : 0)) & 0x1ff;
    if (++this._eeBitsIn === 9) {
      // start bit + READ opcode (1 10) then the word address
      if (this._eeValIn >>> 6 === 0b110) {
        this._eeReading = true;
        this._eeBitOut = (this._eeValIn & 0x3f) * 16 - 1;
      } else {
        this._eeBitsIn = 0;
        this._eeValIn = 0;
      }
    }
  }

  private _eeDo(): boolean {
    if (!this._eeReading || this._eeBitOut < 0) return false;
    const word = (this._eeBitOut >>> 4) & (EEPROM_WORDS - 1);
    return ((this._eeprom[word] >>> (15 - (this._eeBitOut & 15))) & 1) === 1;
  }

  // ---- PHY (MDI) ----

  private _mdic(v: number): number {
    const reg = (v >>> 16) & 0x1f;
    const phy = (v >>> 21) & 0x1f;
    if (phy !== PHY_ADDR) return (v | Mdic.READY | Mdic.ERROR) >>> 0;
    if (v & Mdic.OP_READ) return ((v & ~0xffff) | this._phy[reg] | Mdic.READY) >>> 0;
    if (v & Mdic.OP_WRITE) {
      let d = v & 0xffff;
      if (reg === 0) d &= ~0x8200; // reset and restart-autonegotiation complete at once
      if (reg !== 1 && reg !== 2 && reg !== 3 && reg !== 5 && reg !== 10 && reg !== 17) this._phy[reg] = d;
    }
    return (v | Mdic.READY) >>> 0;
  }

  // ---- interrupts ----

  private _updateIrq(): void {
    const r = this.regs;
    const icr = r[Reg.ICR >>> 2] & ~Icr.ASSERTED;
    const pending = (icr & r[Reg.IMS >>> 2]) !== 0;
    r[Reg.ICR >>> 2] = icr ? (icr | Icr.ASSERTED) >>> 0 : 0;
    this.setIntx(pending ? 1 : 0);
  }

  private _raise(cause: number): void {
    this.regs[Reg.ICR >>> 2] |= cause;
    this._updateIrq();
  }

  // ---- receive ----

  private _rxRing(): { base: number; count: number } {
    const r = this.regs;
    return { base: r[Reg.RDBAL >>> 2] & ~0xf, count: Math.floor(r[Reg.RDLEN >>> 2] / DESC) };
  }

  private _rxBufSize(): number {
    const rctl = this.regs[Reg.RCTL >>> 2];
    const bsize = (rctl >>> 16) & 3;
    if (rctl & Rctl.BSEX) return bsize === 0 ? 2048 : 32768 >>> bsize;
    return 2048 >>> bsize;
  }

  /** Free receive descriptors: from RDH up to (not including) RDT. */
  private _rxFree(): number {
    const { count } = this._rxRing();
    const head = this.regs[Reg.RDH >>> 2];
    const tail = this.regs[Reg.RDT >>> 2];
    if (count === 0 || head >= count || tail >= count) return 0;
    return (tail - head + count) % count;
  }

  canReceive(): boolean {
    if (!(this.regs[Reg.RCTL >>> 2] & Rctl.EN)) return false;
    return this._rxFree() * this._rxBufSize() >= 1522;
  }

  /** Whether the receive filters take a frame with this destination. */
  private _accepts(f: Uint8Array): boolean {
    const rctl = this.regs[Reg.RCTL >>> 2];
    if (f[0] & 1) {
      if (f[0] === 0xff && f[1] === 0xff && f[2] === 0xff && f[3] === 0xff && f[4] === 0xff && f[5] === 0xff) {
        if (rctl & Rctl.BAM) return true;
      }
      if (rctl & Rctl.MPE) return true;
      const mo = (rctl >>> 12) & 3;
      const hash = ((f[4] >>> (4 - mo)) | (f[5] << (4 + mo))) & 0xfff;
      if (this.regs[(Reg.MTA >>> 2) + (hash >>> 5)] & (1 << (hash & 31))) return true;
      return false;
    }
    if (rctl & Rctl.UPE) return true;
    for (let n = 0; n < 16; n++) {
      const lo = this.regs[(Reg.RA >>> 2) + 2 * n];
      const hi = this.regs[(Reg.RA >>> 2) + 2 * n + 1];
      if (!(hi & 0x80000000)) continue;
      if (f[0] === (lo & 0xff) && f[1] === ((lo >>> 8) & 0xff) && f[2] === ((lo >>> 16) & 0xff) && f[3] === lo >>> 24 && f[4] === (hi & 0xff) && f[5] === ((hi >>> 8) & 0xff)) {
        return true;
      }
    }
    return false;
  }

  receive(frame: Uint8Array): void {
    const r = this.regs;
    if (!(r[Reg.RCTL >>> 2] & Rctl.EN) || frame.length < 14 || frame.length > RX_MAX) return;
    if (!this._accepts(frame)) return;
    // short frames are padded to the 60-byte minimum; the FCS follows unless the driver strips it
    const bodyLen = Math.max(60, frame.length);
    const withFcs = !(r[Reg.RCTL >>> 2] & Rctl.SECRC);
    const data = new Uint8Array(bodyLen + (withFcs ? 4 : 0));
    data.set(frame);
    if (withFcs) {
      const fcs = ethernetFcs(data.subarray(0, bodyLen));
      data[bodyLen] = fcs & 0xff;
      data[bodyLen + 1] = (fcs >>> 8) & 0xff;
      data[bodyLen + 2] = (fcs >>> 16) & 0xff;
      data[bodyLen + 3] = fcs >>> 24;
    }
    const bufSize = this._rxBufSize();
    const need = Math.ceil(data.length / bufSize);
    if (this._rxFree() < need) {
      this.rxDropped++;
      this._raise(Icr.RXO);
      return;
    }
    const { base, count } = this._rxRing();
    const d = this._desc;
    const [status, errors] = this._rxChecksum(frame);
    let head = r[Reg.RDH >>> 2];
    for (let off = 0; off < data.length; off += bufSize) {
      const da = base + head * DESC;
      if (!this._dma.read(da, d)) return; // descriptor outside memory: the ring stalls
      const chunk = Math.min(bufSize, data.length - off);
      const buf = lo32(d, 0) + lo32(d, 4) * 0x1_0000_0000;
      this._dma.write(buf, data.subarray(off, off + chunk));
      const last = off + chunk >= data.length;
      d[8] = chunk & 0xff;
      d[9] = chunk >>> 8;
      d[10] = 0;
      d[11] = 0;
      d[12] = RxStatus.DD | (last ? RxStatus.EOP | status : RxStatus.IXSM);
      d[13] = last ? errors : 0;
      this._dma.write(da + 8, d.subarray(8, 16));
      head = (head + 1) % count;
    }
    r[Reg.RDH >>> 2] = head;
    r[Reg.GPRC >>> 2]++;
    r[Reg.TPR >>> 2]++;
    r[Reg.GORCL >>> 2] += data.length;
    let cause: number = Icr.RXT0;
    const rdmts = (r[Reg.RCTL >>> 2] >>> 8) & 3;
    if (rdmts < 3 && this._rxFree() <= count >>> (rdmts + 1)) cause |= Icr.RXDMT0;
    this._raise(cause);
  }

  /**
   * Receive checksum offload (manual 3.2.9): with RXCSUM's IPOFL/TUOFL on,
   * the IPv4 header and TCP/UDP checksums of the frame are checked and
   * reported (IPCS/TCPCS, with IPE/TCPE when wrong), so Linux's e1000 marks
   * good frames CHECKSUM_UNNECESSARY and the guest does not sum them again;
   * anything else reports IXSM ("ignore the checksum bits"). Returns the
   * status and error bits for the last descriptor.
   */
  private _rxChecksum(f: Uint8Array): [number, number] {
    const on = this.regs[Reg.RXCSUM >>> 2] & (Rxcsum.IPOFL | Rxcsum.TUOFL);
    const l4 = on ? ipv4L4Start(f) : -1;
    if (l4 < 0) return [RxStatus.IXSM, 0];
    let status = 0;
    let errors = 0;
    if (on & Rxcsum.IPOFL) {
      status |= RxStatus.IPCS;
      if (!ipv4HeaderOk(f)) errors |= RxErr.IPE;
    }
    if (on & Rxcsum.TUOFL) {
      status |= RxStatus.TCPCS;
      if (!l4ChecksumOk(f, l4)) errors |= RxErr.TCPE;
    }
    return [status, errors];
  }

  // ---- transmit ----

  private _transmit(): void {
    const r = this.regs;
    if (!(r[Reg.TCTL >>> 2] & Tctl.EN)) return;
    const base = r[Reg.TDBAL >>> 2] & ~0xf;
    const count = Math.floor(r[Reg.TDLEN >>> 2] / DESC);
    let head = r[Reg.TDH >>> 2];
    const tail = r[Reg.TDT >>> 2];
    if (count === 0 || head >= count || tail >= count) return;
    const d = this._desc;
    let done = 0;
    // at most one pass round the ring per doorbell, whatever the guest wrote
    for (let n = 0; head !== tail && n < count; n++) {
      const da = base + head * DESC;
      if (!this._dma.read(da, d)) break;
      const cmd = d[11];
      if (cmd & TxCmd.DEXT && ((d[10] >>> 4) & 0xf) === 0) this._context(d);
      else this._data(d);
      if (cmd & TxCmd.RS) {
        d[12] |= 1; // DD
        this._dma.write(da + 12, d.subarray(12, 13));
      }
      head = (head + 1) % count;
      done++;
    }
    r[Reg.TDH >>> 2] = head;
    if (done) this._raise(Icr.TXDW | (head === tail ? Icr.TXQE : 0));
  }

  private _context(d: Uint8Array): void {
    const c = this._ctx;
    c.ipcss = d[0];
    c.ipcso = d[1];
    c.ipcse = d[2] | (d[3] << 8);
    c.tucss = d[4];
    c.tucso = d[5];
    c.tucse = d[6] | (d[7] << 8);
    c.paylen = d[8] | (d[9] << 8) | ((d[10] & 0xf) << 16);
    c.tucmd = d[11];
    c.hdrlen = d[13];
    c.mss = d[14] | (d[15] << 8);
  }

  private _data(d: Uint8Array): void {
    const cmd = d[11];
    const ext = (cmd & TxCmd.DEXT) !== 0;
    const len = ext ? d[8] | (d[9] << 8) | ((d[10] & 0xf) << 16) : d[8] | (d[9] << 8);
    if (this._txLen === 0) {
      // the first descriptor of a packet says which offloads apply
      this._txTse = ext && (cmd & TxCmd.TSE) !== 0;
      this._txPopts = ext ? d[13] : 0;
      this._txLegacyCso = !ext && cmd & TxCmd.IC ? d[10] : -1;
      this._txLegacyCss = d[13];
      this._txOverflow = false;
    }
    const addr = lo32(d, 0) + lo32(d, 4) * 0x1_0000_0000;
    if (len > 0) {
      if (this._txLen + len > TX_MAX) this._txOverflow = true;
      else if (this._dma.read(addr, this._txBuf.subarray(this._txLen, this._txLen + len))) this._txLen += len;
      else this._txOverflow = true;
    }
    if (!(cmd & TxCmd.EOP)) return;
    const n = this._txLen;
    this._txLen = 0;
    if (this._txOverflow || n < 14) return; // a packet the hardware could not fetch is dropped
    this._sendPacket(n);
  }

  private _sendPacket(n: number): void {
    const p = this._txBuf;
    const c = this._ctx;
    if (this._txTse && c.tucmd & TuCmd.TSE) {
      for (const f of segment(p, n, c)) this._emit(f);
      return;
    }
    const f = p.slice(0, n);
    if (this._txLegacyCso >= 0) insertChecksum(f, n, this._txLegacyCso, this._txLegacyCss, 0);
    if (this._txPopts & Popts.IXSM && c.ipcso + 2 <= n) {
      f[c.ipcso] = 0;
      f[c.ipcso + 1] = 0;
      insertChecksum(f, n, c.ipcso, c.ipcss, c.ipcse);
    }
    if (this._txPopts & Popts.TXSM) insertChecksum(f, n, c.tucso, c.tucss, c.tucse);
    this._emit(f);
  }

  private _emit(f: Uint8Array): void {
    const r = this.regs;
    r[Reg.GPTC >>> 2]++;
    r[Reg.TPT >>> 2]++;
    r[Reg.GOTCL >>> 2] += f.length;
    this.backend?.send(f);
  }

  // ---- reset and state ----

  protected override _resetRegisters(): void {
    // called by the PciDevice constructor before this class's fields exist
    if (!this.regs) return;
    this.regs.fill(0);
    const r = this.regs;
    r[Reg.STATUS >>> 2] = STATUS_LINK_UP;
    r[Reg.CTRL >>> 2] = 0x00140240; // power-on CTRL as QEMU reports it: SLU, speed 1000, ILOS clear
    r[Reg.RA >>> 2] = this.mac[0] | (this.mac[1] << 8) | (this.mac[2] << 16) | (this.mac[3] << 24);
    r[(Reg.RA >>> 2) + 1] = (this.mac[4] | (this.mac[5] << 8) | 0x80000000) >>> 0;
    r[0x1000 >>> 2] = 0x00100030; // PBA: 48 KiB receive, 16 KiB transmit
    this._phy = phyResetValues();
    this._eeBitsIn = this._eeValIn = this._eeBitOut = this._eeOld = 0;
    this._eeReading = false;
    this._ioAddr = 0;
    this._txLen = 0;
    this._txTse = false;
    this._txPopts = 0;
    this._txLegacyCso = -1;
    this._txLegacyCss = 0;
    this._txOverflow = false;
    this._ctx = emptyContext();
  }
}

function lo32(d: Uint8Array, o: number): number {
  return (d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (d[o + 3] << 24)) >>> 0;
}

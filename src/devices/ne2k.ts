/**
 * NE2000 on PCI: the Realtek RTL8029(AS), QEMU's `ne2k_pci` (PCI 10EC:8029,
 * class 02:00:00, BAR 0 = 32 I/O ports, INTA#). A National DP8390 core with
 * its packet memory on the card: the driver moves every byte through the
 * data port (remote DMA), the chip stores received frames in a ring of
 * 256-byte pages and sends a frame from a page the driver names. For guests
 * without e1000 or virtio drivers (old Linux, DOS packet drivers, NetWare);
 * slow by design, one port access per word.
 *
 * Ports (offset in BAR 0): 0x00-0x0F the 8390 registers, paged by CR bits
 * 7:6 (page 0 the working set, page 1 the station address PAR0-5, CURR and
 * the multicast filter MAR0-7, page 2 read-back, page 3 the RTL8029's
 * CONFIG registers); 0x10 the data port (8, 16 or 32 bits: one remote DMA
 * step); 0x1F the reset port (a read resets the NIC and sets ISR.RST).
 *
 * Card memory as QEMU lays it out: 0x0000-0x001F the address PROM (the MAC
 * with each byte doubled, then 'WW' at 14-15, as NE2000 clones do, so a
 * driver in word mode reading bytes gets the MAC), 0x4000-0xBFFF 32 KiB of
 * packet memory; the rest reads as 0xFF and ignores writes. The RTL8029
 * answers 'P','C' in page 0 registers 0x0A-0x0B (the Realtek ID).
 *
 * Receive: a frame is stored at CURR with the 4-byte header (status, next
 * page, length) and CURR moves on, never onto BNRY (the 8390 stops short of
 * it; CURR = BNRY reads as an empty ring); a ring too full for a largest
 * frame leaves it waiting in the backend (canReceive false) until the
 * driver moves BNRY, as QEMU does, so no overrun is ever reported; they
 * also wait while a receive interrupt is unacknowledged (see canReceive). Filters: PAR
 * unicast, broadcast (RCR.AB), multicast through MAR hashed like the
 * DP8390 (RCR.AM), promiscuous (RCR.PRO); monitor mode (RCR.MON) stores
 * nothing. Transmit: TPSR/TBCR name the frame; CR.TXP sends it at once and
 * sets ISR.PTX; in loopback (TCR.LB) nothing reaches the wire.
 *
 * Guest values are untrusted: remote DMA and transmit addresses outside the
 * card's memory read 0xFF and write nothing, a ring whose start and stop
 * pages are not inside packet memory in order receives nothing, and nothing
 * here loops on a guest value.
 */
import type { PortHandlers } from '../bus/ports.js';
import { u16, u8, u8s } from '../state/schema.js';
import type { NetBackend, NetPort } from './backends.js';
import { PciDevice, pciState } from './pci/device.js';

export const NE2K_VENDOR = 0x10ec;
export const NE2K_DEVICE = 0x8029;
export const NE2K_IO_BYTES = 0x20;
const MEM_SIZE = 0xc000;
const PMEM_START = 0x4000;
/** The longest frame taken (1514 bytes and a VLAN tag). */
const MAX_FRAME = 1514 + 4;
/** Pages a frame takes: the 4-byte header, the frame, room for the FCS the card counts. */
const pagesFor = (len: number) => (Math.max(len, 60) + 4 + 4 + 255) >>> 8;

const enum Cr {
  STP = 0x01,
  STA = 0x02,
  TXP = 0x04,
  RD_READ = 0x08,
  RD_WRITE = 0x10,
}
const enum Isr {
  PRX = 0x01,
  PTX = 0x02,
  RDC = 0x40,
  RST = 0x80,
}
const enum Rcr {
  AB = 0x04,
  AM = 0x08,
  PRO = 0x10,
  MON = 0x20,
}

/** The big-endian Ethernet CRC the DP8390 hashes multicast addresses with (its top 6 bits index MAR). */
function multicastIndex(f: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < 6; i++) {
    let b = f[i];
    for (let k = 0; k < 8; k++, b >>>= 1) {
      const top = crc >>> 31;
      crc = (crc << 1) >>> 0;
      if ((top ^ (b & 1)) !== 0) crc = (crc ^ 0x04c11db7) >>> 0;
    }
  }
  return crc >>> 26;
}

export class Ne2kPci extends PciDevice implements NetPort {
  /**
   * The DP8390's registers by name (page 0's, and page 1's CURR), the
   * physical and multicast address registers, and the 48 KiB of buffer
   * memory (PROM image included). Version 2: the registers are fields of
   * their own; version 1 packed them into one array.
   */
  static override readonly stateSchema = pciState<Ne2kPci>(
    'ne2k',
    2,
    {
      cmd: u8.at('_cmd'),
      pstart: u8.at('_pstart'),
      pstop: u8.at('_pstop'),
      bnry: u8.at('_bnry'),
      tpsr: u8.at('_tpsr'),
      tbcr: u16.at('_tbcr'),
      isr: u8.at('_isr'),
      imr: u8.at('_imr'),
      rcr: u8.at('_rcr'),
      tcr: u8.at('_tcr'),
      dcr: u8.at('_dcr'),
      rsar: u16.at('_rsar'),
      rbcr: u16.at('_rbcr'),
      curr: u8.at('_curr'),
      tsr: u8.at('_tsr'),
      rsr: u8.at('_rsr'),
      par: u8s(6).at('_par'),
      mar: u8s(8).at('_mar'),
      mem: u8s(MEM_SIZE),
    },
    { transient: ['mac', 'backend', 'wake', 'rxDropped', 'ioPorts', 'ioBase'] },
  );
  readonly mac: Uint8Array;
  backend: NetBackend | null = null;
  /** Frames that came with no room in the receive ring (diagnostics, not state). */
  rxDropped = 0;
  /** Asks the board for a delivery at the next slice boundary (the ring gained room). */
  wake: () => void = () => {};
  readonly ioPorts: PortHandlers;
  /** Where BAR 0 decodes (-1: nowhere); the board keeps it current. */
  ioBase = -1;
  readonly mem = new Uint8Array(MEM_SIZE);
  private readonly _par = new Uint8Array(6);
  private readonly _mar = new Uint8Array(8);
  private _cmd = 0;
  private _pstart = 0;
  private _pstop = 0;
  private _bnry = 0;
  private _tpsr = 0;
  private _tbcr = 0;
  private _isr = 0;
  private _imr = 0;
  private _rcr = 0;
  private _tcr = 0;
  private _dcr = 0;
  private _rsar = 0;
  private _rbcr = 0;
  private _curr = 0;
  private _tsr = 0;
  private _rsr = 0;

  constructor(id: string, mac: Uint8Array) {
    super(id, { vendorId: NE2K_VENDOR, deviceId: NE2K_DEVICE, classCode: 0x020000, revision: 0, interruptPin: 1 }, [{ size: NE2K_IO_BYTES, io: true }]);
    if (mac.length !== 6) throw new RangeError(`${id}: a MAC address has 6 bytes`);
    this.mac = mac.slice();
    const off = (p: number) => (p - this.ioBase) & (NE2K_IO_BYTES - 1);
    this.ioPorts = {
      read8: (p) => {
        const o = off(p);
        if (o < 0x10) return this.readReg(o);
        if (o === 0x10) return this._dataRead(this._dcr & 1 ? 2 : 1) & 0xff;
        if (o === 0x1f) {
          this._softReset();
          return 0;
        }
        return 0xff;
      },
      write8: (p, v) => {
        const o = off(p);
        if (o < 0x10) this.writeReg(o, v & 0xff);
        else if (o === 0x10) this._dataWrite(v, this._dcr & 1 ? 2 : 1);
      },
      read16: (p) => (off(p) === 0x10 ? this._dataRead(2) : 0xffff),
      write16: (p, v) => {
        if (off(p) === 0x10) this._dataWrite(v, 2);
      },
      read32: (p) => (off(p) === 0x10 ? this._dataRead(4) : 0xffffffff),
      write32: (p, v) => {
        if (off(p) === 0x10) this._dataWrite(v, 4);
      },
    };
    this._resetRegisters();
  }

  // ---- the 8390 registers ----

  readReg(o: number): number {
    if (o === 0) return this._cmd;
    switch (((this._cmd >>> 6) << 4) | o) {
      case 0x03: return this._bnry;
      case 0x04: return this._tsr;
      case 0x07: return this._isr;
      case 0x08: return this._rsar & 0xff;
      case 0x09: return this._rsar >>> 8;
      case 0x0a: return 0x50; // RTL8029 ID: 'P'
      case 0x0b: return 0x43; // 'C'
      case 0x0c: return this._rsr;
      case 0x11: case 0x12: case 0x13: case 0x14: case 0x15: case 0x16: return this._par[o - 1];
      case 0x17: return this._curr;
      case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f: return this._mar[o - 8];
      case 0x21: return this._pstart;
      case 0x22: return this._pstop;
      case 0x24: return this._tpsr;
      case 0x2c: return this._rcr;
      case 0x2d: return this._tcr;
      case 0x2e: return this._dcr;
      case 0x2f: return this._imr;
      case 0x35: return 0x40; // CONFIG2: 10BASE-T link
      case 0x36: return 0x40; // CONFIG3: full duplex
      default: return 0;
    }
  }

  writeReg(o: number, v: number): void {
    if (o === 0) {
      this._command(v);
      return;
    }
    switch (((this._cmd >>> 6) << 4) | o) {
      case 0x01: this._pstart = v; break;
      case 0x02: this._pstop = v; break;
      case 0x03: {
        const could = this.canReceive();
        this._bnry = v;
        // the ring gained room for frames waiting in the backend (while it had room, none waited)
        if (!could && this.canReceive()) this.wake();
        break;
      }
      case 0x04: this._tpsr = v; break;
      case 0x05: this._tbcr = (this._tbcr & 0xff00) | v; break;
      case 0x06: this._tbcr = (this._tbcr & 0xff) | (v << 8); break;
      case 0x07: {
        const could = this.canReceive();
        this._isr &= ~(v & 0x7f);
        this._updateIrq();
        if (!could && this.canReceive()) this.wake(); // PRX acknowledged: waiting frames may come in
        break;
      }
      case 0x08: this._rsar = (this._rsar & 0xff00) | v; break;
      case 0x09: this._rsar = (this._rsar & 0xff) | (v << 8); break;
      case 0x0a: this._rbcr = (this._rbcr & 0xff00) | v; break;
      case 0x0b: this._rbcr = (this._rbcr & 0xff) | (v << 8); break;
      case 0x0c: this._rcr = v; break;
      case 0x0d: this._tcr = v; break;
      case 0x0e: this._dcr = v; break;
      case 0x0f: {
        const could = this.canReceive();
        this._imr = v;
        this._updateIrq();
        if (!could && this.canReceive()) this.wake();
        break;
      }
      case 0x11: case 0x12: case 0x13: case 0x14: case 0x15: case 0x16: this._par[o - 1] = v; break;
      case 0x17:
        this._curr = v;
        this.wake();
        break;
      case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f: this._mar[o - 8] = v; break;
      default: break; // page 2 and 3 writes: read-back only, or the RTL8029's configuration, which changes nothing here
    }
  }

  private _command(v: number): void {
    this._cmd = v;
    if (v & Cr.STP) return;
    this._isr &= ~Isr.RST;
    if (v & (Cr.RD_READ | Cr.RD_WRITE) && this._rbcr === 0) this._isr |= Isr.RDC; // a zero-length transfer is complete at once
    if (v & Cr.TXP) {
      const start = this._tpsr << 8;
      const len = this._tbcr;
      if (start >= PMEM_START && start + len <= MEM_SIZE && len > 0 && (this._tcr & 0x06) === 0) this.backend?.send(this.mem.subarray(start, start + len));
      this._tsr = 0x01; // PTX
      this._isr |= Isr.PTX;
      this._cmd &= ~Cr.TXP;
    }
    this._updateIrq();
  }

  // ---- remote DMA through the data port ----

  private _memOk(a: number): boolean {
    return a < 32 || (a >= PMEM_START && a < MEM_SIZE);
  }

  private _dataRead(n: number): number {
    let v = 0;
    const a = n === 1 ? this._rsar : this._rsar & ~1;
    for (let i = n - 1; i >= 0; i--) v = (v << 8) | (this._memOk(a + i) ? this.mem[a + i] : 0xff);
    this._dmaStep(n);
    return v >>> 0;
  }

  private _dataWrite(v: number, n: number): void {
    if (this._rbcr === 0) return;
    const a = n === 1 ? this._rsar : this._rsar & ~1;
    for (let i = 0; i < n; i++) if (this._memOk(a + i)) this.mem[a + i] = (v >>> (8 * i)) & 0xff;
    this._dmaStep(n);
  }

  private _dmaStep(n: number): void {
    this._rsar = (this._rsar + n) & 0xffff;
    if (this._rsar === this._pstop << 8 && this._pstop > this._pstart) this._rsar = this._pstart << 8; // the ring wraps
    if (this._rbcr <= n) {
      if (this._rbcr !== 0) {
        this._rbcr = 0;
        this._isr |= Isr.RDC;
        this._updateIrq();
      }
    } else this._rbcr -= n;
  }

  // ---- receive (the NetPort seam) ----

  /** The ring's bounds in bytes, or null when the driver has not set up a usable one. */
  private _ring(): [number, number] | null {
    const s = this._pstart << 8;
    const e = this._pstop << 8;
    if (s < PMEM_START || e > MEM_SIZE || s >= e || e - s < 0x600) return null;
    return [s, e];
  }

  /**
   * Free pages from CURR up to BNRY. CURR = BNRY reads as an empty ring (a
   * driver may start that way), so a frame is stored only when it leaves
   * CURR short of BNRY: the 8390 stops before its write pointer reaches
   * BNRY, and a ring filled up to BNRY would read as empty and be
   * overwritten, unread frames and all.
   */
  private _roomPages(): number {
    const r = this._ring();
    if (!r) return 0;
    const cur = this._curr;
    const b = this._bnry;
    return cur < b ? b - cur : ((r[1] - r[0]) >>> 8) - (cur - b);
  }

  canReceive(): boolean {
    if (this._cmd & Cr.STP) return true; // a stopped NIC takes frames off the wire and drops them
    // frames stay on the wire while a receive interrupt is unacknowledged: Linux's 8390 driver reads
    // at most 9 frames per interrupt and then acknowledges PRX, so a frame stored meanwhile would
    // sit in the ring with no interrupt to announce it (TCP then stalls until a retransmission)
    if (this._isr & this._imr & Isr.PRX) return false;
    return this._roomPages() > pagesFor(MAX_FRAME);
  }

  receive(frame: Uint8Array): void {
    const ring = this._ring();
    if (this._cmd & Cr.STP || !ring || frame.length < 14 || frame.length > MAX_FRAME) return;
    if (this._roomPages() <= pagesFor(frame.length)) {
      this.rxDropped++;
      return;
    }
    const cur = this._curr << 8;
    if (cur < ring[0] || cur >= ring[1]) return;
    if (!this._accepts(frame)) return;
    const size = Math.max(frame.length, 60);
    const total = size + 4;
    let next = cur + (pagesFor(size) << 8);
    if (next >= ring[1]) next -= ring[1] - ring[0];
    const rsr = 0x01 | (frame[0] & 1 ? 0x20 : 0);
    const hdr = [rsr, next >>> 8, total & 0xff, total >>> 8];
    let at = cur;
    const put = (b: number) => {
      this.mem[at++] = b;
      if (at === ring[1]) at = ring[0];
    };
    for (const b of hdr) put(b);
    for (let i = 0; i < size; i++) put(i < frame.length ? frame[i] : 0);
    this._rsr = rsr;
    this._curr = next >>> 8;
    this._isr |= Isr.PRX;
    this._updateIrq();
  }

  private _accepts(f: Uint8Array): boolean {
    const rcr = this._rcr;
    if (rcr & Rcr.MON) return false;
    if (rcr & Rcr.PRO) return true;
    if ((f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) === 0xff) return (rcr & Rcr.AB) !== 0;
    if (f[0] & 1) {
      if (!(rcr & Rcr.AM)) return false;
      const i = multicastIndex(f);
      return (this._mar[i >>> 3] & (1 << (i & 7))) !== 0;
    }
    for (let i = 0; i < 6; i++) if (f[i] !== this._par[i]) return false;
    return true;
  }

  private _updateIrq(): void {
    this.setIntx(this._isr & this._imr & 0x7f ? 1 : 0);
  }

  // ---- reset and state ----

  /** The reset port: the NIC stops, ISR.RST is set, the PROM holds the MAC again. */
  private _softReset(): void {
    this._isr = Isr.RST;
    this._cmd = 0x21; // stopped, no remote DMA
    this._loadProm();
    this._updateIrq();
  }

  private _loadProm(): void {
    const m = this.mem;
    for (let i = 0; i < 16; i++) {
      const b = i < 6 ? this.mac[i] : i === 14 || i === 15 ? 0x57 : 0;
      m[2 * i] = b;
      m[2 * i + 1] = b;
    }
  }

  protected override _resetRegisters(): void {
    this.mem.fill(0);
    this._par.set(this.mac);
    this._mar.fill(0);
    this._pstart = this._pstop = this._bnry = this._tpsr = this._tbcr = 0;
    this._imr = this._rcr = this._tcr = this._dcr = this._rsar = this._rbcr = this._curr = this._tsr = this._rsr = 0;
    this._softReset();
  }
}

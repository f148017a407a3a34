/**
 * Intel 82540EM (e1000) register offsets and bits, the PHY (Marvell 88E1011)
 * register values, and the EEPROM image, as the 8254x Software Developer's
 * Manual (Intel 317453) gives them. Only what tsvm's model and the guest
 * drivers it serves use.
 */

/** Register offsets in BAR 0 (bytes). */
export const enum Reg {
  CTRL = 0x0000,
  STATUS = 0x0008,
  EECD = 0x0010,
  EERD = 0x0014,
  CTRL_EXT = 0x0018,
  MDIC = 0x0020,
  ICR = 0x00c0,
  ITR = 0x00c4,
  RXCSUM = 0x5000,
  ICS = 0x00c8,
  IMS = 0x00d0,
  IMC = 0x00d8,
  RCTL = 0x0100,
  TCTL = 0x0400,
  RDBAL = 0x2800,
  RDBAH = 0x2804,
  RDLEN = 0x2808,
  RDH = 0x2810,
  RDT = 0x2818,
  TDBAL = 0x3800,
  TDBAH = 0x3804,
  TDLEN = 0x3808,
  TDH = 0x3810,
  TDT = 0x3818,
  /** Statistics: 0x4000-0x40FF, clear on read. */
  STATS = 0x4000,
  STATS_END = 0x4100,
  GPRC = 0x4074,
  GPTC = 0x4080,
  GORCL = 0x4088,
  GOTCL = 0x4090,
  TPR = 0x40d0,
  TPT = 0x40d4,
  MTA = 0x5200,
  RA = 0x5400,
}

export const enum Ctrl {
  SLU = 1 << 6,
  RST = 1 << 26,
  PHY_RST = 1 << 31,
}

/** STATUS at power-on as QEMU reports it: link up, full duplex, 1000 Mb/s. */
export const STATUS_LINK_UP = 0x80080783;

export const enum Eecd {
  SK = 0x01,
  CS = 0x02,
  DI = 0x04,
  DO = 0x08,
  REQ = 0x40,
  GNT = 0x80,
  PRES = 0x100,
}

export const enum Eerd {
  START = 0x01,
  DONE = 0x10,
}

export const enum Mdic {
  OP_WRITE = 0x04000000,
  OP_READ = 0x08000000,
  READY = 0x10000000,
  ERROR = 0x40000000,
}

/** Interrupt cause bits (ICR, ICS, IMS, IMC). */
export const enum Icr {
  TXDW = 0x01,
  TXQE = 0x02,
  LSC = 0x04,
  RXDMT0 = 0x10,
  RXO = 0x40,
  RXT0 = 0x80,
  ASSERTED = 0x80000000,
}

export const enum Rctl {
  EN = 1 << 1,
  UPE = 1 << 3,
  MPE = 1 << 4,
  LPE = 1 << 5,
  BAM = 1 << 15,
  BSEX = 1 << 25,
  SECRC = 1 << 26,
}

export const enum Tctl {
  EN = 1 << 1,
}

/** The PHY's address on the MDI bus and its registers' power-on values (link up, autonegotiation done). */
export const PHY_ADDR = 1;
export function phyResetValues(): Uint16Array {
  const p = new Uint16Array(32);
  p[0] = 0x1140; // control: autonegotiation on, full duplex, 1000 Mb/s
  p[1] = 0x796d; // status: link up, autonegotiation complete
  p[2] = 0x0141; // PHY id: Marvell 88E1011 (the 82540EM's)
  p[3] = 0x0c20;
  p[4] = 0x0de1; // advertisement
  p[5] = 0x45e0; // link partner ability
  p[6] = 0x0001;
  p[9] = 0x0e00; // 1000BASE-T control
  p[10] = 0x3c00; // 1000BASE-T status
  p[15] = 0x3000;
  p[16] = 0x0360; // PHY specific control
  p[17] = 0xac00; // PHY specific status: 1000 Mb/s, full duplex, resolved, link up
  p[20] = 0x0d60;
  return p;
}

/** The 64-word EEPROM: the MAC address in words 0-2, word 63 making the sum 0xBABA. */
export const EEPROM_WORDS = 64;
export const EEPROM_CHECKSUM_SUM = 0xbaba;
export function eepromImage(mac: Uint8Array, deviceId: number): Uint16Array {
  const w = new Uint16Array(EEPROM_WORDS).fill(0xffff);
  for (let i = 0; i < 3; i++) w[i] = mac[2 * i] | (mac[2 * i + 1] << 8);
  const fixed: [number, number][] = [
    [3, 0x0000], [5, 0x0000], [6, 0x0000], [7, 0x0000],
    [8, 0x3000], [9, 0x1000], [10, 0x6403], [11, deviceId], [12, 0x8086], [13, deviceId], [14, 0x8086], [15, 0x3040],
    [16, 0x0008], [17, 0x2000], [18, 0x7e14], [19, 0x0048], [20, 0x1000], [21, 0x00d8], [22, 0x0000], [23, 0x2700],
    [24, 0x6cc9], [25, 0x3150], [26, 0x0722], [27, 0x040b], [28, 0x0984], [29, 0x0000], [30, 0xc000], [31, 0x0706],
    [32, 0x1008], [33, 0x0000], [34, 0x0f04], [35, 0x7fff], [36, 0x4d01], [48, 0x0100], [49, 0x4000], [50, 0x121c],
  ];
  for (const [i, v] of fixed) w[i] = v;
  let sum = 0;
  for (let i = 0; i < EEPROM_WORDS - 1; i++) sum += w[i];
  w[EEPROM_WORDS - 1] = (EEPROM_CHECKSUM_SUM - sum) & 0xffff;
  return w;
}

/** Transmit descriptor command bits (legacy CMD and extended DCMD share them). */
export const enum TxCmd {
  EOP = 0x01,
  IFCS = 0x02,
  IC = 0x04,
  TSE = 0x04,
  RS = 0x08,
  DEXT = 0x20,
}

/** Context descriptor TUCMD bits. */
export const enum TuCmd {
  TCP = 0x01,
  IP = 0x02,
  TSE = 0x04,
}

/** Data descriptor POPTS bits. */
export const enum Popts {
  IXSM = 0x01,
  TXSM = 0x02,
}

export const enum RxStatus {
  DD = 0x01,
  EOP = 0x02,
  IXSM = 0x04,
  TCPCS = 0x20,
  IPCS = 0x40,
}

/** Receive descriptor error bits (byte 13). */
export const enum RxErr {
  TCPE = 0x20,
  IPE = 0x40,
}

/** RXCSUM: receive checksum offloads the driver turned on. */
export const enum Rxcsum {
  IPOFL = 0x100,
  TUOFL = 0x200,
}

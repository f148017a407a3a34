/**
 * System instructions: descriptor-table registers, control and debug
 * registers, CPUID, RDTSC, MSRs, and the x87 escape / WAIT / FXSAVE glue.
 */
import { eaCheck, updateSegChecks } from '../seglimit.js';
import type { ApicBaseListener, Cpu } from '../cpu.js';
import { ApicBase, Attr, CR0, CR4, F, Seg, Vec } from '../consts.js';
import { checkGeneralDetect, updateDebugActive } from '../debug.js';
import type { FpuUnit } from '../fpu-api.js';
import { Descriptor, readDescriptor } from '../segments.js';
import { op, op0f } from './table.js';

/** Raise #GP(0) unless running at CPL 0 (real mode counts as CPL 0; v8086 mode never does). */
function requireCpl0(cpu: Cpu): void {
  if (cpu.vm86 || (cpu.protectedMode && cpu.cpl !== 0)) cpu.raiseGP(0);
}

/** Raise #UD in real and v8086 mode (instructions that exist only in protected mode). */
function requireProtected(cpu: Cpu): void {
  if (!cpu.protectedMode || cpu.vm86) cpu.raiseUD();
}

const desc = new Descriptor();

// ---- 0F 00: SLDT STR LLDT LTR VERR VERW -------------------------------------------
op0f(0x00, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  requireProtected(cpu);
  switch (k) {
    case 0: // SLDT
    case 1: {
      // STR
      const v = cpu.sreg[k === 0 ? Seg.LDTR : Seg.TR];
      if (cpu.modrm >= 0xc0 && cpu.o32) cpu.reg32[cpu.modrm & 7] = v;
      else cpu.writeRm16(v);
      return;
    }
    case 2: {
      // LLDT
      requireCpl0(cpu);
      const sel = cpu.readRm16();
      if ((sel & 0xfffc) === 0) {
        cpu.sreg[Seg.LDTR] = sel;
        cpu.segBase[Seg.LDTR] = 0;
        cpu.segLimit[Seg.LDTR] = 0;
        cpu.segAttr[Seg.LDTR] = 0;
        return;
      }
      if (sel & 4) cpu.raiseGP(sel & 0xfffc);
      if (!readDescriptor(cpu, sel, desc)) cpu.raiseGP(sel & 0xfffc);
      if (desc.isSegment || desc.type !== 2) cpu.raiseGP(sel & 0xfffc);
      if (!desc.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
      cpu.sreg[Seg.LDTR] = sel;
      cpu.segBase[Seg.LDTR] = desc.base;
      cpu.segLimit[Seg.LDTR] = desc.limit;
      cpu.segAttr[Seg.LDTR] = desc.attr;
      return;
    }
    case 3: {
      // LTR
      requireCpl0(cpu);
      const sel = cpu.readRm16();
      if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
      if (sel & 4) cpu.raiseGP(sel & 0xfffc);
      if (!readDescriptor(cpu, sel, desc)) cpu.raiseGP(sel & 0xfffc);
      if (desc.isSegment || (desc.type !== 1 && desc.type !== 9)) cpu.raiseGP(sel & 0xfffc);
      if (!desc.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
      desc.hi |= 0x200; // busy
      cpu.sysWrite8((desc.addr + 5) | 0, (desc.hi >>> 8) & 0xff);
      cpu.sreg[Seg.TR] = sel;
      cpu.segBase[Seg.TR] = desc.base;
      cpu.segLimit[Seg.TR] = desc.limit;
      cpu.segAttr[Seg.TR] = desc.attr;
      return;
    }
    case 4:
    case 5: {
      // VERR / VERW
      const sel = cpu.readRm16();
      let ok = false;
      if ((sel & 0xfffc) !== 0 && readDescriptor(cpu, sel, desc) && desc.isSegment) {
        const conformingCode = (desc.hi & 0xc00) === 0xc00 && desc.isCode;
        const privOk = conformingCode || (desc.dpl >= cpu.cpl && desc.dpl >= (sel & 3));
        if (privOk) {
          if (k === 4) ok = !desc.isCode || (desc.hi & 0x200) !== 0;
          else ok = !desc.isCode && (desc.hi & 0x200) !== 0;
        }
      }
      cpu.setFlagBits(F.ZF, ok ? F.ZF : 0);
      return;
    }
    default:
      cpu.raiseUD();
  }
});

// ---- LAR / LSL -----------------------------------------------------------------------
/** Descriptor types LAR accepts (system ones); LSL accepts those with a limit. */
const LAR_SYS = [false, true, true, true, true, true, false, false, false, true, false, true, true, false, false, false];
const LSL_SYS = [false, true, true, true, false, false, false, false, false, true, false, true, false, false, false, false];
function larLsl(lsl: boolean) {
  return (cpu: Cpu) => {
    requireProtected(cpu);
    cpu.decodeModrm();
    const sel = cpu.readRm16();
    let ok = false;
    if ((sel & 0xfffc) !== 0 && readDescriptor(cpu, sel, desc)) {
      const typeOk = desc.isSegment || (lsl ? LSL_SYS : LAR_SYS)[desc.type];
      const conformingCode = desc.isSegment && (desc.hi & 0xc00) === 0xc00 && desc.isCode;
      ok = typeOk && (conformingCode || (desc.dpl >= cpu.cpl && desc.dpl >= (sel & 3)));
    }
    if (ok) {
      const v = lsl ? desc.limit : desc.hi & 0x00f0ff00;
      const r = (cpu.modrm >> 3) & 7;
      if (cpu.o32) cpu.reg32[r] = v;
      else cpu.reg16[r << 1] = v;
    }
    cpu.setFlagBits(F.ZF, ok ? F.ZF : 0);
  };
}
op0f(0x02, larLsl(false));
op0f(0x03, larLsl(true));

// ---- 0F 01: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG ----------------------------------------
op0f(0x01, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  const mem = cpu.modrm < 0xc0;
  switch (k) {
    case 0:
    case 1: {
      if (!mem) cpu.raiseUD();
      const base = k === 0 ? cpu.gdtBase : cpu.idtBase;
      const limit = k === 0 ? cpu.gdtLimit : cpu.idtLimit;
      if (cpu.segSlow !== 0) eaCheck(cpu, 0, 6, true);
      cpu.probeWrite(cpu.ea, 6);
      cpu.wr16(cpu.ea, limit);
      cpu.wr32((cpu.ea + 2) | 0, cpu.o32 ? base : base & 0xffffff);
      return;
    }
    case 2:
    case 3: {
      if (!mem) cpu.raiseUD();
      requireCpl0(cpu);
      if (cpu.segSlow !== 0) eaCheck(cpu, 0, 6, false);
      const limit = cpu.rd16(cpu.ea);
      let base = cpu.rd32((cpu.ea + 2) | 0);
      if (!cpu.o32) base &= 0xffffff;
      if (k === 2) {
        cpu.gdtBase = base;
        cpu.gdtLimit = limit;
      } else {
        cpu.idtBase = base;
        cpu.idtLimit = limit;
      }
      return;
    }
    case 4: // SMSW
      if (!mem && cpu.o32) cpu.reg32[cpu.modrm & 7] = cpu.cr0;
      else cpu.writeRm16(cpu.cr0);
      return;
    case 6: {
      // LMSW: loads PE/MP/EM/TS; cannot clear PE
      requireCpl0(cpu);
      const v = cpu.readRm16();
      setCr0(cpu, (cpu.cr0 & ~0xe) | (v & 0xf));
      return;
    }
    case 7:
      if (!mem) cpu.raiseUD();
      requireCpl0(cpu);
      cpu.invalidatePage(cpu.ea);
      return;
    default:
      cpu.raiseUD();
  }
});

// ---- control registers ---------------------------------------------------------------
/** CR0 write with its architectural checks; flushes the TLB when paging-related bits change. */
export function setCr0(cpu: Cpu, v: number): void {
  v |= CR0.ET; // hard-wired on the P6
  if ((v & CR0.PG) !== 0 && (v & CR0.PE) === 0) cpu.raiseGP(0);
  if ((v & CR0.NW) !== 0 && (v & CR0.CD) === 0) cpu.raiseGP(0);
  const old = cpu.cr0;
  cpu.cr0 = v;
  if (((old ^ v) & (CR0.PG | CR0.WP | CR0.PE)) !== 0) cpu.flushTlb(true);
  cpu.updateModes();
}

/** CR4 bits that can be set (vme.ts implements VME and PVI); any other raises #GP(0). */
const CR4_SUPPORTED = CR4.VME | CR4.PVI | CR4.TSD | CR4.DE | CR4.PSE | CR4.PGE | CR4.PCE | CR4.OSFXSR;

op0f(0x20, (cpu) => {
  const m = cpu.fetch8();
  requireCpl0(cpu);
  const cr = (m >> 3) & 7;
  let v: number;
  switch (cr) {
    case 0:
      v = cpu.cr0;
      break;
    case 2:
      v = cpu.cr2;
      break;
    case 3:
      v = cpu.cr3;
      break;
    case 4:
      v = cpu.cr4;
      break;
    default:
      return cpu.raiseUD();
  }
  cpu.reg32[m & 7] = v;
});
op0f(0x22, (cpu) => {
  const m = cpu.fetch8();
  requireCpl0(cpu);
  const v = cpu.reg32[m & 7];
  switch ((m >> 3) & 7) {
    case 0:
      setCr0(cpu, v);
      return;
    case 2:
      cpu.cr2 = v;
      return;
    case 3:
      cpu.loadCr3(v);
      return;
    case 4: {
      if (v & ~CR4_SUPPORTED) cpu.raiseGP(0);
      const old = cpu.cr4;
      cpu.cr4 = v;
      if ((old ^ v) & (CR4.PGE | CR4.PSE | CR4.PAE)) cpu.flushTlb(true);
      if ((old ^ v) & CR4.DE) updateDebugActive(cpu); // I/O breakpoints exist only with DE
      return;
    }
    default:
      cpu.raiseUD();
  }
});
// debug registers: DR4/DR5 alias DR6/DR7 unless CR4.DE
op0f(0x21, (cpu) => {
  const m = cpu.fetch8();
  requireCpl0(cpu);
  checkGeneralDetect(cpu);
  let n = (m >> 3) & 7;
  if (n === 4 || n === 5) {
    if (cpu.cr4 & CR4.DE) cpu.raiseUD();
    n += 2;
  }
  cpu.reg32[m & 7] = cpu.dr[n];
});
op0f(0x23, (cpu) => {
  const m = cpu.fetch8();
  requireCpl0(cpu);
  checkGeneralDetect(cpu);
  let n = (m >> 3) & 7;
  if (n === 4 || n === 5) {
    if (cpu.cr4 & CR4.DE) cpu.raiseUD();
    n += 2;
  }
  let v = cpu.reg32[m & 7];
  if (n === 6) v = (v & 0xe00f) | (0xffff0ff0 | 0);
  else if (n === 7) v = (v & ~0xd800) | 0x400;
  cpu.dr[n] = v;
  if (n !== 6) updateDebugActive(cpu); // DR0-DR3 move armed data breakpoints' pages
});

// ---- ARPL (63): adjust RPL; protected mode only ------------------------------------------
op(0x63, (cpu) => {
  requireProtected(cpu);
  cpu.decodeModrm();
  const dst = cpu.readRm16();
  const src = cpu.reg16[((cpu.modrm >> 3) & 7) << 1];
  if ((dst & 3) < (src & 3)) {
    cpu.writeRm16((dst & ~3) | (src & 3));
    cpu.setFlagBits(F.ZF, F.ZF);
  } else {
    cpu.setFlagBits(F.ZF, 0);
  }
});

// ---- SYSENTER / SYSEXIT (0F 34 / 0F 35): flat segments derived from IA32_SYSENTER_CS -------
const FLAT_CODE = Attr.P | Attr.S | Attr.CODE | Attr.RW | Attr.ACCESSED | Attr.DB | Attr.G;
const FLAT_DATA = Attr.P | Attr.S | Attr.RW | Attr.ACCESSED | Attr.DB | Attr.G;
function loadFlat(cpu: Cpu, s: number, sel: number, attr: number): void {
  cpu.sreg[s] = sel;
  cpu.segBase[s] = 0;
  cpu.segLimit[s] = -1;
  cpu.segAttr[s] = attr;
  updateSegChecks(cpu);
}
op0f(0x34, (cpu) => {
  if (!cpu.protectedMode) cpu.raiseGP(0);
  const cs = cpu.sysenterCs;
  if ((cs & 0xfffc) === 0) cpu.raiseGP(0);
  cpu.setFlags(0, F.VM | F.IF | F.RF);
  cpu.setCpl(0);
  loadFlat(cpu, Seg.CS, cs & 0xfffc, FLAT_CODE);
  loadFlat(cpu, Seg.SS, (cs + 8) & 0xfffc, FLAT_DATA);
  cpu.updateModes();
  cpu.reg32[4] = cpu.sysenterEsp;
  cpu.eip = cpu.sysenterEip;
});
op0f(0x35, (cpu) => {
  const cs = cpu.sysenterCs;
  if (!cpu.protectedMode || cpu.vm86 || cpu.cpl !== 0 || (cs & 0xfffc) === 0) cpu.raiseGP(0);
  cpu.setCpl(3);
  loadFlat(cpu, Seg.CS, ((cs + 16) & 0xfffc) | 3, FLAT_CODE | Attr.DPL);
  loadFlat(cpu, Seg.SS, ((cs + 24) & 0xfffc) | 3, FLAT_DATA | Attr.DPL);
  cpu.updateModes();
  cpu.reg32[4] = cpu.reg32[1];
  cpu.eip = cpu.reg32[2];
});

op0f(0x06, (cpu) => {
  // CLTS
  requireCpl0(cpu);
  cpu.cr0 &= ~CR0.TS;
});
op0f(0x08, (cpu) => requireCpl0(cpu)); // INVD: no caches to drop
op0f(0x09, (cpu) => requireCpl0(cpu)); // WBINVD
op0f(0x0b, (cpu) => cpu.raiseUD()); // UD2
// 0F 1F /0: multi-byte NOP (P6)
op0f(0x1f, (cpu) => {
  cpu.decodeModrm();
});

// ---- CPUID -----------------------------------------------------------------------------
/**
 * The vendor string tsvm reports (12 bytes, CPUID leaf 0 in EBX, EDX, ECX order).
 * Intel's, as QEMU's TCG models report: guest kernels pick their CPU set-up by
 * vendor, and an unknown one makes Linux warn that the system may be unstable.
 * The brand string and the hypervisor leaf say that the CPU is tsvm's.
 */
export const CPU_VENDOR = 'GenuineIntel';
export const CPU_BRAND = 'tsvm virtual IA-32 processor';
/** Hypervisor leaf 0x40000000: the signature guests read once CPUID.1:ECX bit 31 says a hypervisor is present. */
export const HYPERVISOR_SIGNATURE = 'TsvmTsvmTsvm';
/** Leaf 1 ECX: only bit 31, "running under a hypervisor" (no SSE3 and later). */
export const CPUID_1_ECX = 0x80000000 | 0;
/** Leaf 1 EDX: FPU VME PSE TSC MSR CX8 SEP PGE CMOV FXSR (exactly what is implemented). */
export const CPUID_1_EDX = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x100 | 0x800 | 0x2000 | 0x8000 | 0x1000000;
/** Leaf 1 EDX bit 9: an on-chip APIC, reported while one is attached and enabled in IA32_APIC_BASE (SDM 10.4.3). */
export const CPUID_1_EDX_APIC = 0x200;

/** Leaf 1 EDX as this CPU reports it now. EBX stays 0: initial APIC ID 0, no CLFLUSH size, one logical processor. */
function cpuid1Edx(cpu: Cpu): number {
  return cpu.apic !== null && (cpu.apicBase & ApicBase.ENABLE) !== 0 ? CPUID_1_EDX | CPUID_1_EDX_APIC : CPUID_1_EDX;
}
/** Family 6, model 3, stepping 3. */
export const CPUID_SIGNATURE = 0x633;

function str4(s: string, i: number): number {
  return (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24)) | 0;
}
const BRAND = CPU_BRAND.padEnd(47, ' ') + '\0';

op0f(0xa2, (cpu) => {
  const r = cpu.reg32;
  const leaf = r[0] >>> 0;
  let a = 0,
    b = 0,
    c = 0,
    d = 0;
  if (leaf === 0) {
    a = 1;
    b = str4(CPU_VENDOR, 0);
    d = str4(CPU_VENDOR, 4);
    c = str4(CPU_VENDOR, 8);
  } else if (leaf === 1) {
    a = CPUID_SIGNATURE;
    c = CPUID_1_ECX;
    d = cpuid1Edx(cpu);
  } else if (leaf === 0x40000000) {
    a = 0x40000000;
    b = str4(HYPERVISOR_SIGNATURE, 0);
    c = str4(HYPERVISOR_SIGNATURE, 4);
    d = str4(HYPERVISOR_SIGNATURE, 8);
  } else if (leaf === 0x80000000) {
    a = 0x80000004 | 0;
  } else if (leaf >= 0x80000002 && leaf <= 0x80000004) {
    const o = (leaf - 0x80000002) * 16;
    a = str4(BRAND, o);
    b = str4(BRAND, o + 4);
    c = str4(BRAND, o + 8);
    d = str4(BRAND, o + 12);
  } else if (leaf < 0x80000000) {
    // unsupported basic leaves return the highest basic leaf's data (as Intel CPUs do)
    a = CPUID_SIGNATURE;
    c = CPUID_1_ECX;
    d = cpuid1Edx(cpu);
  }
  r[0] = a;
  r[3] = b;
  r[1] = c;
  r[2] = d;
});

// ---- RDTSC / RDMSR / WRMSR --------------------------------------------------------------
op0f(0x31, (cpu) => {
  if ((cpu.cr4 & CR4.TSD) !== 0 && (cpu.cpl !== 0 || cpu.vm86) && cpu.protectedMode) cpu.raiseGP(0);
  const tsc = cpu.readTsc();
  cpu.reg32[0] = tsc % 4294967296 | 0;
  cpu.reg32[2] = Math.floor(tsc / 4294967296) | 0;
});

/** What IA32_BIOS_SIGN_ID reports as the loaded microcode revision (as QEMU does: 1). */
const MICROCODE_REVISION = 1;

const enum Msr {
  TSC = 0x10,
  APIC_BASE = 0x1b,
  /** IA32_BIOS_SIGN_ID: the microcode revision (high half), read by Intel guests after writing 0 and CPUID. */
  BIOS_SIGN_ID = 0x8b,
  SYSENTER_CS = 0x174,
  SYSENTER_ESP = 0x175,
  SYSENTER_EIP = 0x176,
}
op0f(0x32, (cpu) => {
  requireCpl0(cpu);
  const r = cpu.reg32;
  let lo = 0,
    hi = 0;
  switch (r[1] >>> 0) {
    case Msr.TSC:
      lo = cpu.readTsc() % 4294967296 | 0;
      hi = Math.floor(cpu.readTsc() / 4294967296) | 0;
      break;
    case Msr.APIC_BASE:
      if (cpu.apic === null) cpu.raiseGP(0);
      lo = cpu.apicBase;
      break;
    case Msr.BIOS_SIGN_ID:
      hi = MICROCODE_REVISION;
      break;
    case Msr.SYSENTER_CS:
      lo = cpu.sysenterCs;
      break;
    case Msr.SYSENTER_ESP:
      lo = cpu.sysenterEsp;
      break;
    case Msr.SYSENTER_EIP:
      lo = cpu.sysenterEip;
      break;
    default:
      cpu.raiseGP(0);
  }
  r[0] = lo;
  r[2] = hi;
});
op0f(0x30, (cpu) => {
  requireCpl0(cpu);
  const r = cpu.reg32;
  switch (r[1] >>> 0) {
    case Msr.TSC:
      cpu.writeTsc((r[0] >>> 0) + (r[2] >>> 0) * 4294967296);
      break;
    case Msr.APIC_BASE: {
      const apic = cpu.apic;
      if (apic === null || r[2] !== 0 || (r[0] & ApicBase.RESERVED) !== 0) cpu.raiseGP(0);
      // BSP is read-only; once disabled, a P6-class APIC stays disabled until RESET (SDM 10.4.3)
      let v = (r[0] & (ApicBase.ADDRESS | ApicBase.ENABLE)) | (cpu.apicBase & ApicBase.BSP);
      if ((cpu.apicBase & ApicBase.ENABLE) === 0) v &= ~ApicBase.ENABLE;
      if (v === cpu.apicBase) break;
      cpu.apicBase = v | 0;
      (apic as ApicBaseListener).apicBaseChanged(cpu.apicBase);
      break;
    }
    case Msr.BIOS_SIGN_ID:
      break; // writing starts a microcode-revision read (or a microcode load, which tsvm has none of)
    case Msr.SYSENTER_CS:
      cpu.sysenterCs = r[0] & 0xffff;
      break;
    case Msr.SYSENTER_ESP:
      cpu.sysenterEsp = r[0];
      break;
    case Msr.SYSENTER_EIP:
      cpu.sysenterEip = r[0];
      break;
    default:
      cpu.raiseGP(0);
  }
});

// ---- x87 escapes, WAIT, FXSAVE/FXRSTOR ----------------------------------------------------
function esc(code: number) {
  return (cpu: Cpu) => {
    if ((cpu.cr0 & (CR0.EM | CR0.TS)) !== 0 || cpu.fpu === null) cpu.raise(Vec.NM);
    const fpu = cpu.fpu;
    const eip = cpu.eip;
    const modrm = cpu.fetch8();
    if (!fpu.isValid(code, modrm)) cpu.raiseUD();
    cpu.eip = eip;
    fpu.instrCs = cpu.sreg[Seg.CS];
    fpu.instrIp = cpu.instrStart;
    cpu.decodeModrm();
    if (cpu.modrm < 0xc0) {
      fpu.dataSeg = cpu.sreg[cpu.eaSeg];
      fpu.dataOff = cpu.eaOff;
    }
    fpu.execute(code, cpu.modrm, cpu.ea, cpu.o32, !cpu.protectedMode || cpu.vm86);
  };
}
for (let c = 0xd8; c <= 0xdf; c++) op(c, esc(c));
op(0x9b, (cpu) => {
  if ((cpu.cr0 & (CR0.MP | CR0.TS)) === (CR0.MP | CR0.TS)) cpu.raise(Vec.NM);
  if (cpu.fpu !== null) cpu.fpu.fwait();
});
op0f(0xae, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  if (cpu.modrm >= 0xc0 || k > 1 || cpu.fpu === null) cpu.raiseUD();
  if (cpu.cr0 & CR0.EM) cpu.raiseUD();
  if (cpu.cr0 & CR0.TS) cpu.raise(Vec.NM);
  if ((cpu.ea & 15) !== 0) cpu.raiseGP(0);
  if (cpu.segSlow !== 0) eaCheck(cpu, 0, 512, k === 0);
  const fpu = cpu.fpu as FpuUnit;
  if (k === 0) fpu.fxsave(cpu.ea);
  else fpu.fxrstor(cpu.ea);
});

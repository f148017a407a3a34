/**
 * The user network's DNS server (RFC 1035): it answers A queries with the
 * addresses the host resolves the name to (the host backend decides how:
 * Node's dns.lookup, so /etc/hosts names work), AAAA queries with an empty
 * answer (the user network is IPv4 only), other types with NOTIMP, and a
 * name the host cannot resolve with NXDOMAIN.
 */
import { get16, put16, put32, type Ip4 } from './wire.js';

export const DNS_PORT = 53;
const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;
/** How long the guest may cache an answer. */
const TTL = 60;

export interface DnsQuestion {
  id: number;
  name: string;
  type: number;
  /** The question section as received (copied into the answer). */
  question: Uint8Array;
  flags: number;
}

/** Parse a query with exactly one question; null for anything else. */
export function parseQuery(p: Uint8Array): DnsQuestion | null {
  if (p.length < 12) return null;
  const flags = get16(p, 2);
  if (flags & 0x8000 || get16(p, 4) !== 1) return null; // a response, or not one question
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    if (i >= p.length) return null;
    const n = p[i];
    if (n === 0) break;
    if (n > 63 || i + 1 + n > p.length) return null; // compression in a question is not expected
    labels.push(String.fromCharCode(...p.subarray(i + 1, i + 1 + n)));
    i += 1 + n;
  }
  if (i + 5 > p.length) return null;
  const type = get16(p, i + 1);
  const cls = get16(p, i + 3);
  if (cls !== CLASS_IN) return null;
  return { id: get16(p, 0), name: labels.join('.'), type, question: p.slice(12, i + 5), flags };
}

/** Whether this question needs a host lookup (an A query); the others are answered at once. */
export function needsLookup(q: DnsQuestion): boolean {
  return q.type === TYPE_A;
}

/**
 * The response: `addrs` are the host's answers for an A query (null: the name
 * does not resolve; undefined: the lookup failed for another reason).
 */
export function buildAnswer(q: DnsQuestion, addrs: Ip4[] | null | undefined): Uint8Array {
  let rcode = 0;
  let answers: Ip4[] = [];
  if (q.type === TYPE_A) {
    if (addrs === null) rcode = RCODE_NXDOMAIN;
    else if (addrs === undefined) rcode = RCODE_SERVFAIL;
    else answers = addrs;
  } else if (q.type !== TYPE_AAAA) {
    rcode = RCODE_NOTIMP;
  }
  const p = new Uint8Array(12 + q.question.length + answers.length * 16);
  put16(p, 0, q.id);
  // QR, opcode copied, RD copied, RA
  put16(p, 2, 0x8000 | (q.flags & 0x7900) | 0x0080 | rcode);
  put16(p, 4, 1);
  put16(p, 6, answers.length);
  p.set(q.question, 12);
  let i = 12 + q.question.length;
  for (const a of answers) {
    put16(p, i, 0xc00c); // the name: a pointer to the question's
    put16(p, i + 2, TYPE_A);
    put16(p, i + 4, CLASS_IN);
    put32(p, i + 6, TTL);
    put16(p, i + 10, 4);
    put32(p, i + 12, a);
    i += 16;
  }
  return p;
}

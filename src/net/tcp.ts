/**
 * The user network's TCP endpoint (RFC 9293): the NAT terminates the
 * guest's TCP connections itself and relays the bytes to host sockets, so
 * each guest connection meets this state machine on the other end.
 *
 * What a guest relies on, and how it is met:
 * - Handshake: a guest SYN makes the host connect first; the SYN-ACK goes to
 *   the guest only once the host connection is up, and a refused host
 *   connection answers the SYN with RST (so `connection refused` reaches the
 *   guest's program). A forwarded host connection starts with our SYN.
 * - MSS: ours is 1460 (a 1500-byte MTU); we send segments no larger than the
 *   guest's MSS option (536 when absent, as RFC 9293 says), except to a NIC
 *   that takes large receives (virtio-net with GUEST_TSO4): there a segment
 *   carries up to 64 KiB and the NIC tells the guest it stands for segments
 *   of the guest's MSS, as a host's GRO would. No timestamps or SACK.
 * - Window scaling (RFC 7323): when the guest's SYN offers it (Linux always
 *   does) we answer with shift 5 and open a 1 MiB receive window; our own
 *   SYN (a forwarded connection) offers it too. Without it, 64 KiB.
 * - Window: we advertise that window less what the host socket has not taken
 *   yet, so a slow host reader slows the guest; we send no more than the
 *   guest's window, and probe a zero window from the retransmission timer.
 * - ACKs: the guest's data is acknowledged once per slice boundary (the
 *   owner calls flushAck() before handing frames to the NIC), not once per
 *   segment: frames reach the guest only at boundaries, so one cumulative
 *   ACK there says the same as many, and costs the guest one packet, not 45
 *   for a 64 KiB TSO burst. The data itself goes to the host socket at the
 *   same point, in one write (a write per 1460-byte segment was a system
 *   call each).
 * - Retransmission: go-back-N from the oldest unacknowledged byte, RTO 1 s
 *   doubling to 60 s (RFC 6298's initial value and bound, without RTT
 *   sampling: loss here is only a guest that dropped a frame), abort with
 *   RST after 12 tries.
 * - Receiving: in-order data only; a segment beyond the next expected byte
 *   is dropped with a duplicate ACK, so the guest retransmits it.
 * - FIN/RST: a guest FIN half-closes the host socket (end()); a host EOF
 *   sends our FIN after the queued data; the connection is forgotten when
 *   both FINs are acknowledged. RST either way aborts the other side.
 */
import type { HostStream } from './host.js';

export const enum TcpFlag {
  FIN = 0x01,
  SYN = 0x02,
  RST = 0x04,
  PSH = 0x08,
  ACK = 0x10,
}

export const OUR_MSS = 1460;
const DEFAULT_MSS = 536;
const MAX_WINDOW = 0xffff;
/** Our receive window and shift when the guest agrees to window scaling (1 MiB >> 5 fits the 16-bit field). */
const SCALED_WINDOW = 1 << 20;
const OUR_WSCALE = 5;
/** RFC 7323 2.3: a shift above 14 is taken as 14. */
const MAX_WSCALE = 14;
const RTO_INITIAL_MS = 1000;
const RTO_MAX_MS = 60000;
const MAX_RETRIES = 12;
/** Host data buffered for the guest beyond which the host socket is paused. */
const SEND_HIGH = 1024 * 1024;

/** seq a < b in 32-bit sequence space. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export type TcpState = 'syn-sent' | 'syn-received' | 'connecting' | 'established' | 'closed';

/** What a connection needs from the NAT around it. */
export interface TcpOwner {
  /**
   * Send a segment to the guest. `syn`: carry our SYN options (MSS, and the
   * window scale when c.synWscale >= 0). `gso`: the data is larger than the
   * guest's MSS and stands for segments of this size (0: an ordinary segment).
   */
  output(c: TcpConn, flags: number, seq: number, ack: number, window: number, data: Uint8Array | null, syn: boolean, gso: number): void;
  /** The largest segment payload the NIC takes in one frame now (the MSS unless it takes large receives). */
  segmentLimit(mss: number): number;
  /** c has an ACK to send: call c.flushAck() at the next slice boundary. */
  ackSoon(c: TcpConn): void;
  /** The connection is over; forget it. */
  remove(c: TcpConn): void;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(h: unknown): void;
}

export class TcpConn {
  state: TcpState;
  host: HostStream | null = null;
  /** Our sequence numbers: oldest unacknowledged, next to send. */
  private _iss: number;
  private _sndUna: number;
  private _sndNxt: number;
  /** The guest's window and MSS. */
  private _sndWnd = 0;
  private _mss = DEFAULT_MSS;
  /** Next byte expected from the guest. */
  private _rcvNxt = 0;
  /** Host bytes for the guest from _sndUna on (acknowledged ones are cut off the front). */
  private _buf = new Uint8Array(4096);
  private _bufOff = 0;
  private _bufLen = 0;
  private _hostEof = false;
  private _finSent = false;
  private _finAcked = false;
  private _guestFin = false;
  private _timer: unknown = null;
  private _rto = RTO_INITIAL_MS;
  private _retries = 0;
  private _paused = false;
  private _lastWnd = MAX_WINDOW;
  /** Window scaling: the guest's shift (applied to its windows), ours (applied to the ones we send); -1 before agreement. */
  private _sndShift = 0;
  private _rcvShift = 0;
  private _scaled = false;
  /** An ACK waits for the next slice boundary. */
  private _ackPending = false;
  /** Guest data for the host socket, written in one piece at the slice boundary (one write, not one per segment). */
  private _toHost: Uint8Array[] = [];
  private _toHostLen = 0;

  constructor(
    private readonly _owner: TcpOwner,
    /** The key the NAT files the connection under. */
    readonly key: string,
    readonly guestIp: number,
    readonly guestPort: number,
    readonly farIp: number,
    readonly farPort: number,
    iss: number,
    state: TcpState,
  ) {
    this._iss = iss >>> 0;
    this._sndUna = this._iss;
    this._sndNxt = this._iss;
    this.state = state;
  }

  /** A guest SYN opened this connection (the host connect is under way). `wscale`: its window-scale option, -1 when absent. */
  guestSyn(seq: number, window: number, mss: number, wscale = -1): void {
    this._rcvNxt = (seq + 1) >>> 0;
    this._sndWnd = window;
    if (mss > 0) this._mss = Math.min(mss, OUR_MSS);
    this._agreeScale(wscale);
  }

  private _agreeScale(wscale: number): void {
    this._scaled = wscale >= 0;
    this._sndShift = this._scaled ? Math.min(wscale, MAX_WSCALE) : 0;
    this._rcvShift = this._scaled ? OUR_WSCALE : 0;
  }

  /** The window-scale option our SYN or SYN-ACK carries (-1: none, when answering a guest SYN without one). */
  get synWscale(): number {
    return this.state === 'syn-sent' || this._scaled ? OUR_WSCALE : -1;
  }

  /** The host connection for a guest SYN is up: answer with SYN-ACK. */
  hostConnected(): void {
    if (this.state !== 'connecting') return;
    this.state = 'syn-received';
    this._sndNxt = (this._iss + 1) >>> 0;
    this._sendSyn();
  }

  /** A forwarded host connection: open towards the guest with our SYN. */
  openToGuest(): void {
    this.state = 'syn-sent';
    this._sndNxt = (this._iss + 1) >>> 0;
    this.host?.pause();
    this._sendSyn();
  }

  private _sendSyn(): void {
    const flags = this.state === 'syn-sent' ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK;
    // the window in a SYN is never scaled (RFC 7323 2.2)
    this._owner.output(this, flags, this._iss, this._rcvNxt, Math.min(this._window(), MAX_WINDOW), null, true, 0);
    this._arm();
  }

  /** Our receive window in bytes (what the host socket has not taken comes off it). */
  private _window(): number {
    const pending = (this.host ? this.host.pending : 0) + this._toHostLen;
    return (this._lastWnd = Math.max(0, (this._scaled ? SCALED_WINDOW : MAX_WINDOW) - pending));
  }

  /** The window field of a segment that is not a SYN. */
  private _wfield(): number {
    return Math.min(this._window() >>> this._rcvShift, MAX_WINDOW);
  }

  /** Send a segment with ACK set (it carries our latest ACK, so a pending one is done). */
  private _out(flags: number, seq: number, data: Uint8Array | null, gso: number): void {
    this._ackPending = false;
    this._owner.output(this, flags, seq, this._rcvNxt, this._wfield(), data, false, gso);
  }

  private _ack(): void {
    this._out(TcpFlag.ACK, this._sndNxt, null, 0);
  }

  /** Acknowledge at the next slice boundary (see the header). */
  private _ackLater(): void {
    if (this._ackPending) return;
    this._ackPending = true;
    this._owner.ackSoon(this);
  }

  /** The slice boundary: the guest's data goes to the host socket, then the ACK that waited (unless a data segment carried it). */
  flushAck(): void {
    this._writeHost();
    if (this._ackPending && this.state !== 'closed') this._ack();
    this._ackPending = false;
  }

  private _writeHost(): void {
    const parts = this._toHost;
    if (!parts.length) return;
    const n = this._toHostLen;
    this._toHost = [];
    this._toHostLen = 0;
    if (parts.length === 1) this.host?.write(parts[0]);
    else {
      const all = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      this.host?.write(all);
    }
  }

  /** Abort: RST to the guest, the host socket destroyed. */
  abort(): void {
    if (this.state === 'closed') return;
    this._owner.output(this, TcpFlag.RST | TcpFlag.ACK, this._sndNxt, this._rcvNxt, 0, null, false, 0);
    this._close();
  }

  private _close(): void {
    this.state = 'closed';
    if (this._timer !== null) this._owner.clearTimer(this._timer);
    this._timer = null;
    this.host?.destroy();
    this.host = null;
    this._owner.remove(this);
  }

  /** A segment from the guest for this connection. */
  segment(flags: number, seq: number, ack: number, window: number, data: Uint8Array, mss: number, wscale = -1): void {
    if (this.state === 'closed') return;
    if (flags & TcpFlag.RST) {
      this._close();
      return;
    }
    if (this.state === 'syn-sent') {
      if ((flags & (TcpFlag.SYN | TcpFlag.ACK)) !== (TcpFlag.SYN | TcpFlag.ACK) || ack !== ((this._iss + 1) >>> 0)) return;
      this._rcvNxt = (seq + 1) >>> 0;
      if (mss > 0) this._mss = Math.min(mss, OUR_MSS);
      this._agreeScale(wscale);
      this._sndUna = ack;
      this._sndWnd = window; // unscaled in a SYN
      this.state = 'established';
      this._disarm();
      this._ack();
      this.host?.resume();
      this._flush();
      return;
    }
    if (flags & TcpFlag.SYN) {
      // a retransmitted SYN: our SYN-ACK was lost
      if (this.state === 'syn-received' && ((seq + 1) >>> 0) === this._rcvNxt) this._sendSyn();
      return;
    }
    if (this.state === 'connecting' || !(flags & TcpFlag.ACK)) return;
    // acknowledgement
    if (seqLt(this._sndUna, ack) && !seqLt(this._sndNxt, ack)) {
      let acked = (ack - this._sndUna) >>> 0;
      if (this.state === 'syn-received') {
        this.state = 'established';
        acked--; // our SYN
      }
      if (this._finSent && ack === this._sndNxt) {
        this._finAcked = true;
        acked--;
      }
      acked = Math.min(acked, this._bufLen);
      this._bufOff = this._bufLen === acked ? 0 : this._bufOff + acked;
      this._bufLen -= acked;
      this._sndUna = ack;
      this._retries = 0;
      this._rto = RTO_INITIAL_MS;
      this._disarm();
      if (this._paused && this._bufLen < SEND_HIGH / 4) {
        this._paused = false;
        this.host?.resume();
      }
    }
    this._sndWnd = window << this._sndShift;
    // data and FIN, in order only
    let needAck = false;
    let off = 0;
    if (data.length > 0) {
      if (seq === this._rcvNxt || (seqLt(seq, this._rcvNxt) && seqLt(this._rcvNxt, (seq + data.length) >>> 0))) {
        off = (this._rcvNxt - seq) >>> 0;
        if (!this._guestFin && this.host) {
          this._toHost.push(data.slice(off)); // the NIC reuses its frame: keep a copy until the boundary
          this._toHostLen += data.length - off;
        }
        this._rcvNxt = (seq + data.length) >>> 0;
      }
      needAck = true;
    }
    if (flags & TcpFlag.FIN && ((seq + data.length) >>> 0) === this._rcvNxt && !this._guestFin) {
      this._guestFin = true;
      this._rcvNxt = (this._rcvNxt + 1) >>> 0;
      this._writeHost();
      this.host?.end();
      needAck = true;
    } else if (flags & TcpFlag.FIN) {
      needAck = true;
    }
    if (needAck) this._ackLater();
    this._flush();
    this._maybeDone();
  }

  private _maybeDone(): void {
    if (this._guestFin && this._finAcked) this._close();
  }

  /** Bytes from the host for the guest. */
  hostData(d: Uint8Array): void {
    if (this._bufOff + this._bufLen + d.length > this._buf.length) {
      // move the unacknowledged bytes to the front (acknowledgements only advance _bufOff), growing if need be
      let n = this._buf.length;
      while (n < this._bufLen + d.length) n *= 2;
      if (n === this._buf.length) this._buf.copyWithin(0, this._bufOff, this._bufOff + this._bufLen);
      else {
        const b = new Uint8Array(n);
        b.set(this._buf.subarray(this._bufOff, this._bufOff + this._bufLen));
        this._buf = b;
      }
      this._bufOff = 0;
    }
    this._buf.set(d, this._bufOff + this._bufLen);
    this._bufLen += d.length;
    if (this._bufLen > SEND_HIGH && !this._paused) {
      this._paused = true;
      this.host?.pause();
    }
    this._flush();
  }

  hostEnd(): void {
    this._hostEof = true;
    this._flush();
  }

  /** The host socket took data: reopen a window the guest may see as closed. */
  hostDrained(): void {
    if (this.state === 'established' && this._lastWnd < (this._scaled ? SCALED_WINDOW : MAX_WINDOW) / 2) this._ack();
  }

  /** Send what the guest's window allows; FIN once the host is done and everything is sent. */
  private _flush(probe = false): void {
    if (this.state !== 'established') return;
    const inFlight = (this._sndNxt - this._sndUna) >>> 0;
    let sent = this._finSent ? inFlight - 1 : inFlight;
    let room = this._sndWnd - sent;
    if (probe && room <= 0 && sent < this._bufLen) room = 1;
    const mss = this._mss;
    // whole MSS multiples in one frame when the NIC takes large receives
    const limit = Math.max(mss, this._owner.segmentLimit(mss));
    const most = limit > mss ? limit - (limit % mss) : mss;
    while (sent < this._bufLen && room > 0) {
      let n = Math.min(most, room, this._bufLen - sent);
      if (n > mss && n % mss && n < this._bufLen - sent) n -= n % mss; // a large frame ends on a segment boundary unless it is the last
      const o = this._bufOff + sent;
      const last = sent + n === this._bufLen;
      // output() copies the bytes into the frame at once, so a view of the buffer is enough
      this._out(TcpFlag.ACK | (last ? TcpFlag.PSH : 0), this._sndNxt, this._buf.subarray(o, o + n), n > mss ? mss : 0);
      this._sndNxt = (this._sndNxt + n) >>> 0;
      sent += n;
      room -= n;
    }
    if (this._hostEof && !this._finSent && sent === this._bufLen) {
      this._out(TcpFlag.FIN | TcpFlag.ACK, this._sndNxt, null, 0);
      this._sndNxt = (this._sndNxt + 1) >>> 0;
      this._finSent = true;
    }
    if (this._sndNxt !== this._sndUna || this._bufLen > 0) this._arm();
  }

  private _arm(): void {
    if (this._timer !== null) return;
    this._timer = this._owner.setTimer(this._rto, () => this._timeout());
  }

  private _disarm(): void {
    if (this._timer !== null) this._owner.clearTimer(this._timer);
    this._timer = null;
  }

  private _timeout(): void {
    this._timer = null;
    if (this.state === 'closed') return;
    if (++this._retries > MAX_RETRIES) {
      this.abort();
      return;
    }
    this._rto = Math.min(this._rto * 2, RTO_MAX_MS);
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      this._sendSyn();
      return;
    }
    // go back to the oldest unacknowledged byte
    this._sndNxt = this._sndUna;
    this._finSent = false;
    this._flush(true);
  }

  /** For tests and logs. */
  get info(): { sndUna: number; sndNxt: number; rcvNxt: number; buffered: number; mss: number } {
    return { sndUna: this._sndUna, sndNxt: this._sndNxt, rcvNxt: this._rcvNxt, buffered: this._bufLen, mss: this._mss };
  }
}

/**
 * What the user-mode network needs from its host: byte streams (TCP sockets),
 * datagram sockets, name lookup and timers. src/host/node implements it on
 * Node's net, dgram and dns modules; a browser host could implement it over
 * a WebSocket relay. The network code never sees a Node object.
 */

/** Callbacks from one host stream. */
export interface StreamEvents {
  /** The outgoing connection is established. */
  onConnect(): void;
  onData(data: Uint8Array): void;
  /** The host side finished sending (a FIN came from the peer). */
  onEnd(): void;
  /** The connection failed or was reset; `refused` when the peer refused it. */
  onError(message: string, refused: boolean): void;
  /** The host OS took what was queued (pending fell). */
  onDrain(): void;
}

export interface HostStream {
  write(data: Uint8Array): void;
  /** Bytes written but not yet taken by the host OS. */
  readonly pending: number;
  /** Send FIN after the queued data. */
  end(): void;
  /** Abort (RST). */
  destroy(): void;
  pause(): void;
  resume(): void;
}

/** A connection accepted by a listener, not yet given its callbacks. */
export interface AcceptedStream {
  /** The peer's address and port, for logs. */
  readonly peer: string;
  accept(ev: StreamEvents): HostStream;
}

export interface HostDatagram {
  send(data: Uint8Array, addr: string, port: number): void;
  close(): void;
}

export interface Closable {
  close(): void;
}

export interface NetHost {
  connect(addr: string, port: number, ev: StreamEvents): HostStream;
  /** Listen on a TCP port; rejects with a message a user understands (the port is in use, ...). */
  listen(addr: string, port: number, onAccept: (s: AcceptedStream) => void): Promise<Closable>;
  /** The same over a UNIX-domain socket (a switch's socket file). */
  connectUnix(path: string, ev: StreamEvents): HostStream;
  /**
   * Listen on a UNIX-domain socket; a socket file nobody answers on any more
   * (left by a process that died) is replaced, one that answers is an error.
   */
  listenUnix(path: string, onAccept: (s: AcceptedStream) => void): Promise<Closable>;
  udp(onMessage: (data: Uint8Array, addr: string, port: number) => void): HostDatagram;
  /** Resolve a name to IPv4 addresses: null when the name does not exist, undefined on another failure. */
  lookup(name: string, done: (addrs: string[] | null | undefined) => void): void;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

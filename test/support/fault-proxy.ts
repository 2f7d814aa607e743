import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A connection is a `subscriber` from the moment its client sends SUBSCRIBE, SSUBSCRIBE or
 * PSUBSCRIBE, else a `command` connection. It never goes back: ioredis keeps a connection in
 * subscriber mode for its whole life.
 */
export type ConnectionKind = 'command' | 'subscriber';

/** What the proxy saw since it started; every connection it accepted counts. */
export interface ProxyCounters {
  /** Connections accepted, each counted once under its current (or last) kind. */
  readonly connections: Record<ConnectionKind, number>;
  /** Replies the server sent (every frame that is not a message push, also on subscribers). */
  readonly replies: number;
  /** Replies given a delay on their way to the client. */
  readonly repliesDelayed: number;
  /** `message`, `pmessage` and `smessage` pushes the server sent to subscriber connections. */
  readonly messages: number;
  readonly messagesDropped: number;
  readonly messagesDelayed: number;
}

type MutableCounters = { -readonly [K in keyof ProxyCounters]: ProxyCounters[K] } & {
  connections: Record<ConnectionKind, number>;
};

const SUBSCRIBE_COMMANDS = new Set(['subscribe', 'ssubscribe', 'psubscribe']);
const MESSAGE_PUSHES = new Set(['message', 'pmessage', 'smessage']);

const CR = 0x0d;
const LF = 0x0a;

/** Raised on bytes that are not RESP2; the proxy records it and cuts the connection. */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

/**
 * Splits a RESP2 byte stream into whole frames, whatever the chunking: nested arrays, nil,
 * bulk strings of any size. It scans each byte once and copies a frame only when it is
 * complete, so a large reply split into many chunks costs no rescans.
 */
export class RespFrames {
  /** Bytes of the current, incomplete frame from earlier chunks. */
  #partial: Buffer[] = [];
  /** The header line being read, without its CRLF, when it spans chunks. */
  #line = '';
  /** Bulk bytes (and their CRLF) still to pass over. */
  #skip = 0;
  /** For each array the scan is inside, how many elements it still expects. */
  #open: number[] = [];

  /** Feeds a chunk; returns the frames it completed, in order. */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let start = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        i += n;
        this.#skip -= n;
        if (this.#skip > 0 || !this.#elementDone()) continue;
      } else {
        const newline = chunk.indexOf(LF, i);
        const end = newline === -1 ? chunk.length : newline + 1;
        this.#line += chunk.toString('latin1', i, end);
        i = end;
        if (newline === -1 || !this.#header()) continue;
      }
      this.#partial.push(chunk.subarray(start, i));
      frames.push(
        this.#partial.length === 1 ? (this.#partial[0] as Buffer) : Buffer.concat(this.#partial),
      );
      this.#partial = [];
      start = i;
    }
    if (start < chunk.length) this.#partial.push(chunk.subarray(start));
    return frames;
  }

  /** Reads a complete header line; returns whether it completed the frame. */
  #header(): boolean {
    const line = this.#line;
    this.#line = '';
    if (line.charCodeAt(line.length - 2) !== CR) throw new RespProtocolError(`bad line ${line}`);
    const type = line[0];
    // Simple types, RESP2's and RESP3's (null, boolean, double, big number).
    if (type !== undefined && '+-:_#,('.includes(type)) return this.#elementDone();
    const body = line.slice(1, -2);
    if (!/^-?\d+$/.test(body)) throw new RespProtocolError(`bad header ${JSON.stringify(line)}`);
    const length = Number(body);
    // Bulk string, and RESP3's verbatim string and bulk error.
    if (type === '$' || type === '=' || type === '!') {
      if (length < 0) return this.#elementDone();
      this.#skip = length + 2;
      return false;
    }
    // Array, and RESP3's push and set; a map holds two elements per entry. (An attribute, which
    // precedes a reply, is not sent unless a client asks for one.)
    if (type === '*' || type === '>' || type === '~' || type === '%') {
      const elements = type === '%' ? 2 * length : length;
      if (elements <= 0) return this.#elementDone();
      this.#open.push(elements);
      return false;
    }
    throw new RespProtocolError(`unknown RESP type ${JSON.stringify(line)}`);
  }

  /** Counts one finished element; returns whether it finished the top-level frame. */
  #elementDone(): boolean {
    for (;;) {
      const last = this.#open.length - 1;
      const left = this.#open[last];
      if (left === undefined) return true;
      if (left > 1) {
        this.#open[last] = left - 1;
        return false;
      }
      this.#open.pop();
    }
  }
}

/**
 * The first element of a frame that is an array starting with a short bulk string (a command
 * name, or the kind of a pub/sub push), lowercased; `undefined` for anything else.
 */
function head(frame: Buffer): string | undefined {
  // An array (a command, or a RESP2 push) or a RESP3 push.
  if (frame[0] !== 0x2a && frame[0] !== 0x3e) return undefined;
  const lengthAt = frame.indexOf(LF) + 1;
  if (frame[lengthAt] !== 0x24) return undefined;
  const lengthEnd = frame.indexOf(CR, lengthAt);
  const length = Number(frame.toString('latin1', lengthAt + 1, lengthEnd));
  if (!(length <= 16)) return undefined;
  return frame.toString('latin1', lengthEnd + 2, lengthEnd + 2 + length).toLowerCase();
}

function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay must be ≥ 0 ms, got ${ms}`);
  return ms;
}

/**
 * The faults of one scope: every connection of a kind (`proxy.commands`, `proxy.subscribers`)
 * or one connection (`connection.faults`). A connection suffers both its kind's faults and its
 * own: the longer delay, either hold or partition, and drops from its own count first. A delay
 * applies to frames arriving from then on; frames already on their way keep theirs.
 */
export class Faults {
  #replyDelayMs = 0;
  #messageDelayMs = 0;
  #held = false;
  #partitioned = false;
  #drops = 0;
  readonly #changed: () => void;

  /** `changed` runs when a fault is lifted, so that what waited for it moves on. */
  constructor(changed: () => void) {
    this.#changed = changed;
  }

  get replyDelayMs(): number {
    return this.#replyDelayMs;
  }
  get messageDelayMs(): number {
    return this.#messageDelayMs;
  }
  get held(): boolean {
    return this.#held;
  }
  get partitioned(): boolean {
    return this.#partitioned;
  }
  /** Message pushes still to drop (`Infinity`: every one until `dropMessages(0)`). */
  get drops(): number {
    return this.#drops;
  }

  /** Delays each reply by `ms` on its way to the client; replies keep their order. */
  delayReplies(ms: number): this {
    this.#replyDelayMs = checkDelay(ms);
    return this;
  }

  /** Buffers replies (not message pushes) until `release()`. */
  hold(): this {
    this.#held = true;
    return this;
  }

  release(): this {
    this.#held = false;
    this.#changed();
    return this;
  }

  /**
   * Drops the next `count` message pushes (on a kind's scope: counted over all its
   * connections); `Infinity` drops all of them until `dropMessages(0)`. Replies, among them
   * subscribe confirmations, always pass.
   */
  dropMessages(count = Number.POSITIVE_INFINITY): this {
    if (!(count >= 0)) throw new RangeError(`count must be ≥ 0, got ${count}`);
    this.#drops = count;
    return this;
  }

  /** Delays each message push by `ms`; pushes keep their order. Replies are not delayed. */
  delayMessages(ms: number): this {
    this.#messageDelayMs = checkDelay(ms);
    return this;
  }

  /**
   * A network black hole: nothing is forwarded either way, the client gets no reply and no
   * close. Bytes of both directions are buffered, as TCP would retransmit them, and go through
   * in order on `heal()`: a command sent during the partition is executed after it.
   */
  partition(): this {
    this.#partitioned = true;
    return this;
  }

  heal(): this {
    this.#partitioned = false;
    this.#changed();
    return this;
  }

  /** Lifts every fault of this scope. */
  clear(): this {
    this.#replyDelayMs = 0;
    this.#messageDelayMs = 0;
    this.#held = false;
    this.#partitioned = false;
    this.#drops = 0;
    this.#changed();
    return this;
  }

  /** Whether to drop the message at hand (and counts it off). */
  takeDrop(): boolean {
    if (this.#drops <= 0) return false;
    this.#drops--;
    return true;
  }
}

interface Queued {
  readonly frame: Buffer;
  readonly due: number;
}

interface ProxyInternals {
  readonly scopes: Record<ConnectionKind, Faults>;
  readonly counters: MutableCounters;
  readonly errors: Error[];
  /** Registers a live connection and how to move its frames when a fault is lifted. */
  opened(connection: ProxyConnection, pump: () => void): void;
  closed(connection: ProxyConnection): void;
}

/**
 * One client connection and its own upstream connection. Server frames wait in two lanes,
 * replies and message pushes, each in order: a delayed or held reply lets messages overtake it
 * (a reply delayed behind a feed message), and the other way round.
 */
export class ProxyConnection {
  readonly id: number;
  /** This connection's own faults, on top of its kind's. */
  readonly faults: Faults;
  #kind: ConnectionKind = 'command';
  readonly #client: Socket;
  readonly #upstream: Socket;
  readonly #proxy: ProxyInternals;
  readonly #requests = new RespFrames();
  readonly #replyFrames = new RespFrames();
  /** Client bytes not yet forwarded (a partition buffers them). */
  #outbound: Buffer[] = [];
  #replies: Queued[] = [];
  #messages: Queued[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The server closed: the client sees it after the frames queued before it, as over TCP. */
  #upstreamGone = false;
  #closed = false;

  /** Made by the proxy for each accepted client. */
  constructor(id: number, client: Socket, upstreamPath: string, proxy: ProxyInternals) {
    this.id = id;
    this.#client = client;
    this.#proxy = proxy;
    this.faults = new Faults(() => this.#pump());
    // Writes before the connect completes are queued by the socket itself.
    this.#upstream = createConnection(upstreamPath);
    // Every error is followed by 'close', where the connection ends.
    client.on('error', () => {});
    this.#upstream.on('error', () => {});
    client.on('close', () => this.cut());
    this.#upstream.on('close', () => {
      this.#upstreamGone = true;
      this.#pump();
    });
    client.on('data', (chunk: Buffer) => {
      this.#outbound.push(chunk);
      this.#pump();
    });
    this.#upstream.on('data', (chunk: Buffer) => this.#fromServer(chunk));
    proxy.opened(this, () => this.#pump());
  }

  get kind(): ConnectionKind {
    return this.#kind;
  }

  /** Replies and messages waiting in the proxy now (delayed, held or partitioned). */
  get queued(): { readonly replies: number; readonly messages: number } {
    return { replies: this.#replies.length, messages: this.#messages.length };
  }

  /** Destroys both sides, as a network reset: the client sees a close, queued frames are lost. */
  cut(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#client.destroy();
    this.#upstream.destroy();
    this.#outbound = [];
    this.#replies = [];
    this.#messages = [];
    this.#proxy.closed(this);
  }

  get #scope(): Faults {
    return this.#proxy.scopes[this.#kind];
  }

  #fromServer(chunk: Buffer): void {
    const counters = this.#proxy.counters;
    const now = performance.now();
    for (const frame of this.#frames(this.#replyFrames, chunk)) {
      const push = this.#kind === 'subscriber' && MESSAGE_PUSHES.has(head(frame) ?? '');
      if (push) {
        counters.messages++;
        if (this.faults.takeDrop() || this.#scope.takeDrop()) {
          counters.messagesDropped++;
          continue;
        }
      } else {
        counters.replies++;
      }
      const delay = push
        ? Math.max(this.faults.messageDelayMs, this.#scope.messageDelayMs)
        : Math.max(this.faults.replyDelayMs, this.#scope.replyDelayMs);
      if (delay > 0) counters[push ? 'messagesDelayed' : 'repliesDelayed']++;
      (push ? this.#messages : this.#replies).push({ frame, due: now + delay });
    }
    this.#pump();
  }

  /** The frames a chunk completes; a protocol error is recorded and cuts the connection. */
  #frames(parser: RespFrames, chunk: Buffer): Buffer[] {
    if (this.#closed) return [];
    try {
      return parser.push(chunk);
    } catch (error) {
      this.#proxy.errors.push(error instanceof Error ? error : new Error(String(error)));
      this.cut();
      return [];
    }
  }

  /** Moves everything the faults let through now, and wakes up for the next due frame. */
  #pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.faults.partitioned || this.#scope.partitioned) return;
    // Kinds are told apart at the point the command reaches the server, not when the client
    // sent it: a SUBSCRIBE stuck in a partition has not made a subscriber yet.
    for (const chunk of this.#outbound.splice(0)) {
      for (const frame of this.#frames(this.#requests, chunk)) {
        if (this.#kind === 'command' && SUBSCRIBE_COMMANDS.has(head(frame) ?? '')) {
          this.#kind = 'subscriber';
          this.#proxy.counters.connections.command--;
          this.#proxy.counters.connections.subscriber++;
        }
      }
      if (this.#closed) return;
      // After the server closed, the client's bytes have nowhere to go.
      if (!this.#upstreamGone) this.#upstream.write(chunk);
    }
    const now = performance.now();
    const held = this.faults.held || this.#scope.held;
    this.#client.cork();
    const next = Math.min(
      held ? Number.POSITIVE_INFINITY : this.#drain(this.#replies, now),
      this.#drain(this.#messages, now),
    );
    this.#client.uncork();
    if (next !== Number.POSITIVE_INFINITY) {
      // A timer may fire a little before `performance.now()` reaches `next`: it then waits again.
      this.#timer = setTimeout(() => this.#pump(), Math.max(1, Math.ceil(next - now)));
    } else if (this.#upstreamGone && this.#replies.length + this.#messages.length === 0) {
      this.#client.end();
    }
  }

  /** Writes the lane's due frames in order; returns when its next frame is due. */
  #drain(lane: Queued[], now: number): number {
    let first = lane[0];
    while (first !== undefined && first.due <= now) {
      this.#client.write(first.frame);
      lane.shift();
      first = lane[0];
    }
    return first?.due ?? Number.POSITIVE_INFINITY;
  }
}

/**
 * A proxy between ioredis clients and a redis-server on a unix socket, whose network is not
 * kind: it delays, holds, drops, partitions and cuts, frame by frame (a fault never splits a
 * reply). Connect with `new Redis({ path: proxy.path })`. Each proxy is independent: a test
 * may run several.
 */
export class FaultProxy {
  /** The proxy's unix socket. */
  readonly path: string;
  /** Faults of every command connection, now and later. */
  readonly commands: Faults;
  /** Faults of every subscriber connection, now and later. */
  readonly subscribers: Faults;
  /** Protocol errors met (the connection was cut); a test expects none. */
  readonly errors: Error[] = [];
  readonly #dir: string;
  readonly #server: Server;
  /** Open connections, each with its pump. */
  readonly #live = new Map<ProxyConnection, () => void>();
  readonly #counters: MutableCounters = {
    connections: { command: 0, subscriber: 0 },
    replies: 0,
    repliesDelayed: 0,
    messages: 0,
    messagesDropped: 0,
    messagesDelayed: 0,
  };

  private constructor(upstreamPath: string, dir: string) {
    this.#dir = dir;
    this.path = join(dir, 'proxy.sock');
    const pumpAll = () => {
      for (const pump of this.#live.values()) pump();
    };
    this.commands = new Faults(pumpAll);
    this.subscribers = new Faults(pumpAll);
    let ids = 0;
    const internals: ProxyInternals = {
      scopes: { command: this.commands, subscriber: this.subscribers },
      counters: this.#counters,
      errors: this.errors,
      opened: (connection, pump) => this.#live.set(connection, pump),
      closed: (connection) => this.#live.delete(connection),
    };
    this.#server = createServer((client) => {
      this.#counters.connections.command++;
      new ProxyConnection(++ids, client, upstreamPath, internals);
    });
  }

  /** Starts a proxy to the server listening on `upstreamPath` (e.g. `RedisServer.path`). */
  static async start(upstreamPath: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(upstreamPath, mkdtempSync(join(tmpdir(), 'statebreaker-proxy-')));
    try {
      await new Promise<void>((resolve, reject) => {
        proxy.#server.once('error', reject);
        proxy.#server.listen(proxy.path, () => {
          proxy.#server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      rmSync(proxy.#dir, { recursive: true, force: true });
      throw error;
    }
    return proxy;
  }

  /** A copy of the counters as they are now. */
  get counters(): ProxyCounters {
    return structuredClone(this.#counters);
  }

  /** The open connections, oldest first; of one kind when given. */
  connections(kind?: ConnectionKind): ProxyConnection[] {
    return [...this.#live.keys()].filter((c) => kind === undefined || c.kind === kind);
  }

  /** Partitions every connection (see `Faults.partition`), and those accepted later. */
  partition(): void {
    this.commands.partition();
    this.subscribers.partition();
  }

  heal(): void {
    this.commands.heal();
    this.subscribers.heal();
  }

  /** Cuts every open connection (of one kind when given): clients see a close and reconnect. */
  cut(kind?: ConnectionKind): void {
    for (const connection of this.connections(kind)) connection.cut();
  }

  /** Lifts every fault: of both kinds and of each open connection. */
  clear(): void {
    this.commands.clear();
    this.subscribers.clear();
    for (const connection of this.#live.keys()) connection.faults.clear();
  }

  /** Stops listening, destroys every connection and removes the socket's temp dir. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.cut();
    await closed;
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

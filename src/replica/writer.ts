import { randomUUID } from 'node:crypto';
import type { TransitionReason } from '../machine.js';
import { flat } from '../record/lineage.js';
import type { RecordStamp } from '../record/order.js';
import type { PersistedBreakerSnapshot, StoredRecord } from '../record/shape.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, CompareAndSetResult } from '../stores/store.js';
import { type Ticket, type WriteGate, writeGateOf } from './write-gate.js';

/** One compare-and-set the writer is to send. */
export interface WriteRequest {
  readonly expectedVersion: number;
  readonly expectedWriteId: string | undefined;
  readonly record: StoredRecord;
  /** The newest pending event the record holds. */
  readonly upToSeq: number;
  /** The base the record was made on. */
  readonly base: RecordStamp | null;
  /** The top-level state the record holds. */
  readonly state: CircuitState;
  /** Whether the store lets the record expire (an idle record on a store with `recordTtl`). */
  readonly lapses: boolean;
  /** Whether the record holds an operator's event: written with this writer's fence. */
  readonly operator?: boolean;
}

/** A write whose answer has not come yet. */
export interface OpenWrite {
  readonly writeId: string;
  readonly upToSeq: number;
  readonly state: CircuitState;
  /** Why the record's statechart is in that state, and its generation (announced on landing). */
  readonly reason: TransitionReason;
  readonly generation: number;
  /** The lineage the record carries: its ancestors' write ids. */
  readonly lineage: string;
  /** The line the record belongs to (see `RecordStamp.origin`). */
  readonly origin: string | undefined;
  /** Whether the store lets the record expire. */
  readonly lapses: boolean;
  /** The record's snapshot (an inspected breaker shows it once confirmed). */
  readonly snapshot: PersistedBreakerSnapshot;
}

/** What the writer asks of and tells its replica. */
export interface WriterHost {
  readonly store: BreakerStore;
  readonly name: string;
  /** The write to send now, or `null` when the store already holds the local state. */
  nextWrite(writeId: string): WriteRequest | null;
  /** Whether `nextWrite` would return a write (asked before waiting for a turn). */
  wantsWrite(): boolean;
  /** A write of this instance landed. */
  written(stamp: RecordStamp, write: OpenWrite): void;
  /** A write was refused: the store holds something else. */
  refused(result: Extract<CompareAndSetResult, { ok: false }>, sentBase: RecordStamp | null): void;
  /** The store did not answer (a timeout, a lost connection, a closed client). */
  failed(error: unknown): void;
  /** The store answered a call. */
  answered(): void;
  /**
   * Whether the local state leaves the top-level state of the record it builds on (a trip, a
   * close): such a write goes out at once even under contention, since the fleet waits for it.
   */
  urgent(): boolean;
  /** Whether a caller waits for the next write (a probe's admission). */
  awaited(): boolean;
  /** The writer has nothing left to do. */
  writerQuiet?(): void;
}

// Conflicts in a row that are retried at once; after them each retry of a write that changes no
// top-level state (a failure count) waits a random while (up to 2^conflicts ms, at most 64), so
// that writers contending for one record spread out and a trip gets through first.
// A conflict means another instance wrote, never that the store failed: no limit, no alarm.
const IMMEDIATE_CONFLICTS = 2;
const URGENT_CONFLICTS = 8;
const MAX_JITTER_MS = 64;
// Writes whose answer never came that are remembered, to recognise them if they landed.
const OPEN_WRITES = 8;

// Write ids: unique per writer (random) and per write (counter), cheap to make.
let writers = 0;
const PROCESS = randomUUID().slice(0, 8);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The prefix of the write ids of the writer numbered `serial` in this process. */
export function writeIdPrefix(serial: number): string {
  return `${PROCESS}.${serial.toString(36)}:`;
}

/**
 * Writes one replica's local changes with compare-and-set, one at a time, gathering the events
 * of a tick into one write. It remembers the writes whose answer has not come (in flight, or
 * given up on after a timeout), so that meeting one later, in a reply, the feed or a read,
 * confirms its events instead of applying them twice.
 */
export class Writer {
  readonly #host: WriterHost;
  #running: Promise<void> | null = null;
  #inFlight: OpenWrite | null = null;
  #unanswered: OpenWrite[] = [];
  #spread: { timer: ReturnType<typeof setTimeout>; go: () => void } | null = null;
  #stopped = false;
  /** A schedule() came while the loop ran: the spread it asked for, `null` for none. */
  #again: number | null = null;
  /** An operator's write of this writer met a conflict: the store may hold others back. */
  #fenced = false;
  /** Prefix of this writer's write ids: one breaker instance's (and its operator fence id). */
  readonly #id: string;
  /** The number in this writer's id prefix: a writer built again for the instance reuses it. */
  readonly serial: number;
  #writes = 0;
  readonly #gate: WriteGate | undefined;
  /** The gate's ticket while the next write waits for its turn. */
  #ticket: Ticket | null = null;

  /**
   * @param serial and `writes`: those of an earlier writer of the same instance, released while
   * idle, so that its write ids stay its own and never repeat.
   */
  constructor(host: WriterHost, serial = ++writers, writes = 0) {
    this.#host = host;
    this.serial = serial;
    this.#writes = writes;
    this.#id = writeIdPrefix(serial);
    this.#gate = writeGateOf(host.store);
  }

  /** Writes sent so far (the counter in write ids). */
  get writes(): number {
    return this.#writes;
  }

  /** Whether nothing is running, waiting, or unanswered: the host may release the writer. */
  get quiet(): boolean {
    return (
      this.#running === null &&
      this.#inFlight === null &&
      this.#unanswered.length === 0 &&
      this.#spread === null &&
      !this.#fenced
    );
  }

  /** Someone now waits for the next write: it goes before writes of other breakers. */
  hurry(): void {
    if (this.#ticket !== null) this.#gate?.hurry(this.#ticket);
  }

  /** Settles when no write is running or waiting. */
  get idle(): Promise<void> | null {
    return this.#running;
  }

  /** Whether a compare-and-set is out and its answer has not come. */
  get awaitingReply(): boolean {
    return this.#inFlight !== null;
  }

  /** The newest pending event the write in flight carries (0: none in flight). */
  get inFlightUpTo(): number {
    return this.#inFlight?.upToSeq ?? 0;
  }

  /**
   * Starts writing. `spreadMs` > 0 (a timed transition another instance is expected to write)
   * waits between `spreadMs` and twice that first, so that the record written meanwhile is
   * adopted instead; a later call without it starts the write at once.
   */
  schedule(spreadMs = 0): void {
    if (this.#stopped) return;
    if (this.#running !== null) {
      // The loop may be past its last look for work: have it look again when it ends.
      this.#again = Math.min(this.#again ?? spreadMs, spreadMs);
      if (spreadMs === 0) this.#spread?.go();
      return;
    }
    const waited =
      spreadMs > 0
        ? new Promise<void>((resolve) => {
            const go = () => {
              clearTimeout(spread.timer);
              this.#spread = null;
              resolve();
            };
            const spread = { timer: setTimeout(go, spreadMs * (1 + Math.random())), go };
            spread.timer.unref();
            this.#spread = spread;
          })
        : undefined;
    this.#again = null;
    this.#running = this.#loop(waited).finally(() => {
      this.#running = null;
      if (this.#again !== null) this.schedule(this.#again);
      else this.#host.writerQuiet?.();
    });
  }

  /** Whether `writeId` names a write of this writer (this breaker instance). */
  wrote(writeId: string | undefined): boolean {
    return writeId?.startsWith(this.#id) === true;
  }

  /** Every write of this writer whose answer has not come, oldest first. */
  get openWrites(): readonly OpenWrite[] {
    return this.#inFlight === null ? this.#unanswered : [...this.#unanswered, this.#inFlight];
  }

  /** The write `writeId`, if it is one of this writer's whose answer has not come. */
  open(writeId: string | undefined): OpenWrite | undefined {
    if (writeId === undefined) return undefined;
    if (this.#inFlight?.writeId === writeId) return this.#inFlight;
    return this.#unanswered.find((write) => write.writeId === writeId);
  }

  /** Forgets the open write `writeId`: it was met and confirmed. */
  settle(writeId: string): void {
    this.#unanswered = this.#unanswered.filter((write) => write.writeId !== writeId);
  }

  stop(): void {
    if (this.#fenced) this.#liftFence();
    this.#stopped = true;
    this.#spread?.go();
    if (this.#ticket !== null) this.#gate?.drop(this.#ticket);
  }

  // Waits for the store's gate; false when the writer stopped meanwhile (holding no place).
  async #turn(): Promise<boolean> {
    const gate = this.#gate as WriteGate;
    const ticket = gate.enter(this.#host.awaited());
    if (ticket === null) return true;
    this.#ticket = ticket;
    await new Promise<void>((resolve) => {
      ticket.resolve = resolve;
    });
    this.#ticket = null;
    if (ticket.granted && this.#stopped) gate.leave();
    return ticket.granted && !this.#stopped;
  }

  #liftFence(): void {
    this.#fenced = false;
    this.#host.store.liftFence?.(this.#host.name, this.#id).catch(() => undefined);
  }

  async #loop(waited: Promise<void> | undefined): Promise<void> {
    // Let the events of this tick gather into one write.
    await waited;
    let conflicts = 0;
    while (!this.#stopped) {
      // Nothing to write: no turn needed. The write itself is built once the turn comes, so
      // that it carries every event up to then.
      if (!this.#host.wantsWrite()) {
        // As below: nothing left to write after an operator's conflict lifts its fence.
        if (this.#fenced) this.#liftFence();
        return;
      }
      if (this.#gate !== undefined && !(await this.#turn())) return;
      // Kept by the record and the base of a breaker waiting out its period: flat (see `flat`).
      const writeId = flat(`${this.#id}${++this.#writes}`);
      const request = this.#host.nextWrite(writeId);
      // An operator's write met a conflict (the store may hold the fleet back for it) and the
      // record that won left it nothing to write: let the fleet go on.
      if (this.#fenced && request?.operator !== true) this.#liftFence();
      if (request === null) {
        this.#gate?.leave();
        return;
      }
      const open: OpenWrite = {
        writeId,
        upToSeq: request.upToSeq,
        state: request.state,
        reason: request.record.snapshot.context.reason,
        generation: request.record.snapshot.context.generation,
        lineage: request.record.snapshot.lineage ?? '',
        origin: request.record.snapshot.origin,
        lapses: request.lapses,
        snapshot: request.record.snapshot,
      };
      this.#inFlight = open;
      let result: CompareAndSetResult;
      try {
        result = await this.#host.store.compareAndSet(
          this.#host.name,
          request.expectedVersion,
          request.record,
          request.expectedWriteId,
          request.operator === true ? this.#id : undefined,
        );
      } catch (error) {
        this.#gate?.leave();
        // The write may still land (a reply lost or late): remember it.
        if (this.#inFlight === open) this.#inFlight = null;
        this.#unanswered.push(open);
        if (this.#unanswered.length > OPEN_WRITES) this.#unanswered.shift();
        this.#host.failed(error);
        return;
      }
      this.#gate?.leave();
      if (this.#inFlight === open) this.#inFlight = null;
      this.#host.answered();
      if (result.ok) {
        conflicts = 0;
        if (request.operator === true) this.#fenced = false;
        this.#host.written({ version: request.record.version, writeId }, open);
        continue;
      }
      if (request.operator === true) this.#fenced = true;
      this.#host.refused(result, request.base);
      // An urgent write retries at once, but not for ever at full speed: a long run of
      // conflicts means a busy record, where a pause costs little.
      if (++conflicts > (this.#host.urgent() ? URGENT_CONFLICTS : IMMEDIATE_CONFLICTS)) {
        await sleep(Math.random() * Math.min(MAX_JITTER_MS, 2 ** conflicts));
      }
    }
  }
}

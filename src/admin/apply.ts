import { randomUUID } from 'node:crypto';
import { createActor, type Snapshot } from 'xstate';
import type { Clock } from '../clock.js';
import {
  type BreakerConfig,
  type BreakerEvent,
  breakerMachine,
  SCHEMA_VERSION,
} from '../machine.js';
import { descentOf, nextRecord } from '../record/next.js';
import type { PersistedBreakerSnapshot, StoredRecord } from '../record/shape.js';

// The operator's statechart runs one event and stops: the target states of operator events run
// no timer, and none may start from here either.
const INERT: Clock = {
  now: () => 0,
  setTimeout: () => undefined,
  clearTimeout: () => {},
};

let writes = 0;
const WRITER = `operator-${randomUUID().slice(0, 8)}.`;

/** A fresh write id for an operator's write: unique, without quotes or spaces. */
export function operatorWriteId(): string {
  return `${WRITER}${(++writes).toString(36)}`;
}

function persisted(snapshot: unknown): PersistedBreakerSnapshot {
  const { writeId: _w, lineage: _l, ...rest } = snapshot as PersistedBreakerSnapshot;
  return { ...rest, schema: SCHEMA_VERSION };
}

/**
 * `event` applied by the statechart to `snapshot`, under the configuration the snapshot holds:
 * the next persisted snapshot (without write id or lineage), or `null` when the statechart
 * ignores the event there (forcing open a forced-open breaker).
 */
export function applyEvent(
  snapshot: PersistedBreakerSnapshot,
  event: BreakerEvent,
): PersistedBreakerSnapshot | null {
  const actor = createActor(breakerMachine, {
    snapshot: snapshot as unknown as Snapshot<unknown>,
    input: snapshot.context.config,
    clock: INERT,
  });
  actor.start();
  try {
    const before = actor.getSnapshot();
    actor.send(event);
    if (actor.getSnapshot() === before) return null;
    return persisted(actor.getPersistedSnapshot());
  } finally {
    actor.stop();
  }
}

/** The statechart's initial snapshot under `config`, as a breaker without a record holds it. */
export function initialSnapshot(config: BreakerConfig): PersistedBreakerSnapshot {
  const actor = createActor(breakerMachine, { input: config, clock: INERT });
  const snapshot = persisted(actor.getPersistedSnapshot());
  actor.stop();
  return snapshot;
}

/**
 * The operator's record that follows `base` with `snapshot`: the next version, a fresh write id,
 * and the lineage of a record built on `base`, so that every instance adopts it as the newer
 * record. It always names its line (see `RecordStamp.origin`): the base's, or a new one where
 * none was stored or it could not be read, so that instances holding an expired record adopt it.
 */
export function operatorRecord(
  base: StoredRecord | null,
  snapshot: PersistedBreakerSnapshot,
  version: number,
): StoredRecord {
  return nextRecord(snapshot, version, operatorWriteId(), descentOf(base?.snapshot ?? null), true);
}

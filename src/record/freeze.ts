import type { BreakerContext } from '../machine.js';
import type { StoredRecord } from './shape.js';

/**
 * Freezes `context` in place, with its configuration, probe leases and streak. The statechart
 * never changes a context in place (each `assign` makes a new one), so the context an actor
 * runs on can be frozen without copying it: whoever holds it (a store's reader, an inspector)
 * can no longer write into the statechart.
 */
export function freezeContext(context: BreakerContext): BreakerContext {
  if (Object.isFrozen(context)) return context;
  Object.freeze(context.config);
  Object.freeze(context.probes);
  if (context.streak !== undefined) Object.freeze(context.streak);
  return Object.freeze(context);
}

/**
 * Freezes `record` in place, down to its snapshot's context: a store that keeps records by
 * reference hands out what it keeps, and a reader that wrote into it would change what every
 * breaker of the name restores, and the context of the actor that wrote it.
 */
export function freezeRecord(record: StoredRecord): StoredRecord {
  if (Object.isFrozen(record)) return record;
  const { snapshot } = record;
  freezeContext(snapshot.context);
  if (typeof snapshot.value === 'object') Object.freeze(snapshot.value);
  Object.freeze(snapshot);
  return Object.freeze(record);
}

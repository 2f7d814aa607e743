import type { PersistedBreakerSnapshot } from './shape.js';

/**
 * Whether a record says nothing that no record at all does not: closed with no failure counted
 * and no instance in a failure streak.
 * A breaker that finds none starts there too, so a store may let such a record expire (the
 * `recordTtl` of `RedisStore`); every other record holds state the fleet must keep.
 */
export function isIdleRecord(snapshot: PersistedBreakerSnapshot): boolean {
  const { failures, streak } = snapshot.context;
  // `closed` has no substates: its state value is the plain string.
  return snapshot.value === 'closed' && failures === 0 && (streak?.length ?? 0) === 0;
}

import type { PendingEvents } from './pending.js';

/** How a probe's admission ended: the store agreed, refused, or did not answer in time. */
export type Admission = 'confirmed' | 'refused' | 'unanswered';

/** A caller waiting to learn how the event `seq` fared. */
export interface Waiter {
  readonly seq: number;
  readonly resolve: (admission: Admission) => void;
}

/** How the event `seq` fared so far; `undefined` while a write holding it is still open. */
export function fateOf(pending: PendingEvents | null, seq: number): Admission | undefined {
  // No pending list: nothing was ever sent, so nothing can be waiting.
  const fate = pending === null ? true : pending.fate(seq);
  if (fate === undefined) return undefined;
  return fate ? 'confirmed' : 'refused';
}

/** Resolves the waiters whose event's fate is known; returns those still waiting (or `null`). */
export function checkWaiters(waiters: Waiter[], pending: PendingEvents | null): Waiter[] | null {
  const waiting: Waiter[] = [];
  for (const waiter of waiters) {
    const fate = fateOf(pending, waiter.seq);
    if (fate === undefined) waiting.push(waiter);
    else waiter.resolve(fate);
  }
  return waiting.length > 0 ? waiting : null;
}

/** Resolves every waiter with the same answer. */
export function settleWaiters(waiters: Waiter[] | null, admission: Admission): void {
  for (const waiter of waiters ?? []) waiter.resolve(admission);
}

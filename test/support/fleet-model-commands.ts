import fc from 'fast-check';
import type { BreakerConfig } from 'statebreaker';

/** How a call's error counts, as `classifyPathError` says. */
export type CallOutcome = 'success' | 'failure' | 'ignored';

/** One step of a run across the fleet; `on` picks an instance (modulo the fleet's size). */
export type FleetCommand =
  /** A call that settles at once. */
  | { readonly kind: 'call'; readonly on: number; readonly outcome: CallOutcome }
  /** A call held open until a `settle` (in half-open: a probe). */
  | { readonly kind: 'start'; readonly on: number }
  /** Settles one held call, chosen by `pick`. */
  | { readonly kind: 'settle'; readonly pick: number; readonly outcome: CallOutcome }
  /** Moves the shared clock to a deadline, one ms either side of it, or by 1 ms. */
  | {
      readonly kind: 'advance';
      readonly unit: 'resetTimeout' | 'probeLease' | 'ms';
      readonly delta: number;
    }
  | {
      readonly kind: 'operate';
      readonly on: number;
      readonly op: 'FORCE_OPEN' | 'DISABLE' | 'RESET';
    }
  /** The instance's subscriber loses its next `count` change messages (at its proxy). */
  | { readonly kind: 'drop'; readonly on: number; readonly count: number }
  /** CLIENT KILL TYPE pubsub: every subscriber is cut and resubscribes. */
  | { readonly kind: 'killSubscribers' }
  /** The instance's store reloads its record now. */
  | { readonly kind: 'resync'; readonly on: number }
  /** Lets the change feed and pending writes run before the next step. */
  | { readonly kind: 'pause' }
  /** Cheap restart, empty: FLUSHALL and cut every connection. */
  | { readonly kind: 'flush' }
  /** Remembers the record (and SAVEs a dump), for a later restart with old data. */
  | { readonly kind: 'checkpoint' }
  /** Cheap restart with old data: the checkpoint's record written back, connections cut. */
  | { readonly kind: 'restore' }
  /** Real SIGKILL of redis-server; it stays down until `revive` (or quiescence). */
  | { readonly kind: 'crash'; readonly data: 'empty' | 'now' | 'checkpoint' }
  | { readonly kind: 'revive' };

/** Commands that inject a fault into Redis or the change feed. */
export const FAULTS: ReadonlySet<FleetCommand['kind']> = new Set([
  'drop',
  'killSubscribers',
  'flush',
  'restore',
  'crash',
  'revive',
]);

const outcome = fc.constantFrom<CallOutcome>('success', 'failure', 'failure', 'ignored');
const on = fc.nat(5);

// Weighted like the single-process property: mostly calls, held calls and clock steps, so that
// runs reach half-open and probe; operator states are rare and mostly reset, since they stick.
const traffic: fc.WeightedArbitrary<FleetCommand>[] = [
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('call' as const), on, outcome }) },
  { weight: 7, arbitrary: fc.record({ kind: fc.constant('start' as const), on }) },
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), outcome }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      unit: fc.constantFrom('resetTimeout' as const, 'probeLease' as const, 'ms' as const),
      delta: fc.integer({ min: -1, max: 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('operate' as const),
      on,
      op: fc.constantFrom(
        'FORCE_OPEN' as const,
        'DISABLE' as const,
        'RESET' as const,
        'RESET' as const,
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('drop' as const),
      on,
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('killSubscribers' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resync' as const), on }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('checkpoint' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const) }) },
];

/** Commands of the cheap property: every fault but a real restart. */
export const cheapCommand: fc.Arbitrary<FleetCommand> = fc.oneof(...traffic);

/** Commands of the property with real restarts of redis-server. */
export const restartCommand: fc.Arbitrary<FleetCommand> = fc.oneof(
  ...traffic,
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      data: fc.constantFrom('empty' as const, 'now' as const, 'checkpoint' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revive' as const) }) },
);

/** Thresholds small enough that short runs trip, half-open and close. */
export const fleetConfig: fc.Arbitrary<BreakerConfig> = fc.record({
  failMax: fc.integer({ min: 1, max: 3 }),
  resetTimeout: fc.integer({ min: 2, max: 1_000 }),
  successThreshold: fc.integer({ min: 1, max: 3 }),
  halfOpenMaxCalls: fc.integer({ min: 1, max: 2 }),
  probeLease: fc.integer({ min: 2, max: 1_000 }),
});

import fc from 'fast-check';
import type { BreakerConfig } from 'statebreaker';
import { STORE_TIMEOUT_MS } from './fleet-model-redis.js';

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
  /**
   * The instance's change messages each take `ms` longer, through the next `steps` commands
   * (then, or at quiescence, the fault is lifted).
   */
  | {
      readonly kind: 'delayMessages';
      readonly on: number;
      readonly ms: number;
      readonly steps: number;
    }
  /**
   * The instance's command replies each take `ms` longer, through the next `steps` commands,
   * while its change messages pass: a reply arrives behind feed messages sent after it.
   */
  | {
      readonly kind: 'delayReplies';
      readonly on: number;
      readonly ms: number;
      readonly steps: number;
    }
  /**
   * The instance's command replies wait at its proxy through the next `steps` commands, then
   * go on in order; its feed passes.
   */
  | { readonly kind: 'hold'; readonly on: number; readonly steps: number }
  /**
   * Nothing goes either way on the instance's connections through the next `steps` commands
   * (a black hole); then what was held back goes through, in order.
   */
  | { readonly kind: 'partition'; readonly on: number; readonly steps: number }
  /**
   * Starts a held call on each instance of `starts` (in half-open: a probe's admission), then
   * blocks the event loop for `ms` with a synchronous busy loop, at once (`start`) or once the
   * admissions' writes are sent (`send`).
   */
  | {
      readonly kind: 'stall';
      readonly ms: number;
      readonly starts: readonly number[];
      readonly after: 'start' | 'send';
    }
  /** The instance's wall clock (its store's `hostNow`) steps by `seconds`. */
  | { readonly kind: 'stepClock'; readonly on: number; readonly seconds: number }
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
  'delayMessages',
  'delayReplies',
  'hold',
  'partition',
  'stall',
  'stepClock',
  'killSubscribers',
  'flush',
  'restore',
  'crash',
  'revive',
]);

const outcome = fc.constantFrom<CallOutcome>('success', 'failure', 'failure', 'ignored');
const on = fc.nat(5);
// A delay of a few ms mostly; sometimes past the store's timeout, so that the instance's calls
// to Redis time out.
const delayMs = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 40 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: STORE_TIMEOUT_MS + 1, max: 2 * STORE_TIMEOUT_MS }),
  },
);
// Stalls short mostly; sometimes around or past the store's timeout (up to twice it).
const stallMs = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 20 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: STORE_TIMEOUT_MS - 10, max: 2 * STORE_TIMEOUT_MS }),
  },
);

// One instance's network (its proxy) and the process itself, unkind. A fault on the network
// lasts through the next few commands and is lifted before the one after (or at quiescence),
// so that faults come and go within a run. Each store call an instance makes under a fault past
// the store's timeout costs the suite that timeout: weighted so that runs stay fast.
const steps = fc.integer({ min: 1, max: 3 });
// The network's share of the traffic's weights (the others add up to 40).
const NETWORK_WEIGHT = 3;
const network: fc.Arbitrary<FleetCommand> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('delayReplies' as const), on, ms: delayMs, steps }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('delayMessages' as const), on, ms: delayMs, steps }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('hold' as const), on, steps }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('partition' as const), on, steps }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('stall' as const),
      ms: stallMs,
      starts: fc.array(on, { maxLength: 2 }),
      after: fc.constantFrom('start' as const, 'send' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('stepClock' as const),
      on,
      seconds: fc.oneof(fc.integer({ min: -120, max: -1 }), fc.integer({ min: 1, max: 120 })),
    }),
  },
);

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
  { weight: NETWORK_WEIGHT, arbitrary: network },
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

import { assign } from 'xstate';
import {
  type BreakerConfig,
  type BreakerContext,
  type BreakerEvent,
  RETRY_AFTER_FLOOR,
  RETRY_AFTER_MAX,
  type TransitionReason,
  type WindowCounts,
} from './machine-context.js';

// The arithmetic the statechart's guards, actions and delays share: rates, open durations,
// probe leases and streaks. Pure functions of a context and an event.

// The empty streak and the empty set of probe leases, shared by every context that holds one: a
// context is never changed in place (each `assign` makes a new one), and every open or closed
// breaker of a process would otherwise keep an empty array and an empty object of its own.
export const NO_STREAK: readonly string[] = Object.freeze([]);
export const NO_PROBES: Record<string, number> = Object.freeze({}) as Record<string, number>;

export function earliestLease(probes: Record<string, number>): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const id in probes) {
    const until = probes[id] as number;
    if (until < earliest) earliest = until;
  }
  return earliest;
}

// `xstate.after` events carry no time of their own; they fire at their own deadline, which the
// transition that follows records (openedAt), so that deadline stands in for "now".
export function eventTime(event: { type: string }, fallback: number): number {
  return 'at' in event && typeof event.at === 'number' ? event.at : fallback;
}

export function isProbeOf(context: BreakerContext, event: BreakerEvent): boolean {
  return (
    'probeId' in event &&
    event.probeId !== undefined &&
    'generation' in event &&
    event.generation === context.generation &&
    event.probeId in context.probes
  );
}

export function withoutProbe(probes: Record<string, number>, id: string | undefined) {
  let next: Record<string, number> | undefined;
  for (const key in probes) {
    if (key === id) continue;
    next ??= {};
    next[key] = probes[key] as number;
  }
  return next ?? NO_PROBES;
}

/** Whether `counts` reach the failure-rate rule of `config` (at least `minimumCalls` counted). */
export function failureRateReached(config: BreakerConfig, counts: WindowCounts): boolean {
  const threshold = config.failureRateThreshold;
  return (
    threshold !== undefined &&
    counts.calls >= (config.minimumCalls ?? 1) &&
    counts.failures * 100 >= threshold * counts.calls
  );
}

/** Whether `counts` reach the slow-call rule of `config` (at least `minimumCalls` counted). */
export function slowCallRateReached(config: BreakerConfig, counts: WindowCounts): boolean {
  const threshold = config.slowCallRateThreshold;
  return (
    threshold !== undefined &&
    counts.calls >= (config.minimumCalls ?? 1) &&
    counts.slow * 100 >= threshold * counts.calls
  );
}

/**
 * How long the circuit stays open when it opens for a retry-after of `ms`: the upstream's value,
 * at least `retryAfterFloor` and at most `backoffMax` (10 minutes without backoff). `resetTimeout`
 * plays no part: the upstream said when to come back.
 */
export function retryAfterDuration(config: BreakerConfig, ms: number): number {
  const floor = config.retryAfterFloor ?? RETRY_AFTER_FLOOR;
  const max = Math.max(config.backoffMax ?? RETRY_AFTER_MAX, floor);
  return Math.min(Math.max(ms, floor), max);
}

/** How long the circuit stays open since `openedAt` (the delay `resetTimeout` waits that long). */
export function openDurationOf(context: BreakerContext): number {
  return context.openDuration ?? context.config.resetTimeout;
}

// A reopen without a close in between: the last open duration times the multiplier, bounded.
export function reopenDuration(context: BreakerContext): number {
  const { config } = context;
  const multiplier = config.backoffMultiplier;
  if (multiplier === undefined) return config.resetTimeout;
  const grown = openDurationOf(context) * multiplier;
  return Math.min(Math.max(grown, config.resetTimeout), config.backoffMax ?? grown);
}

export function instanceOf(event: BreakerEvent): string {
  return event.type === 'FAILURE' ? (event.instance ?? '') : '';
}

// The streak's instances with the event's: a quorum needs no more than `quorum` of them.
export function streakWith(context: BreakerContext, event: BreakerEvent): readonly string[] {
  const streak = context.streak ?? NO_STREAK;
  const quorum = context.config.quorum ?? 1;
  const instance = instanceOf(event);
  if (quorum <= 1 || streak.length >= quorum || streak.includes(instance)) return streak;
  return [...streak, instance];
}

// Instances are told apart (and counted) only when a quorum above 1 needs them.
export function windowQuorum(config: BreakerConfig, instances: number | undefined): boolean {
  const quorum = config.quorum ?? 1;
  return quorum <= 1 || (instances ?? 0) >= quorum;
}

export function windowCounts(event: BreakerEvent): WindowCounts | undefined {
  return event.type === 'WINDOW' ? event : undefined;
}

// Every way into `open` clears the counters and the probes and fences older calls.
export function opening(
  context: BreakerContext,
  reason: TransitionReason,
  openedAt: number,
  openDuration: number,
) {
  return {
    failures: 0,
    streak: NO_STREAK,
    successes: 0,
    probes: NO_PROBES,
    openedAt,
    openDuration,
    generation: context.generation + 1,
    reason,
  };
}

// A trip of the closed circuit by one of the counting rules, open for `resetTimeout`.
export function tripFor(reason: TransitionReason) {
  return assign<BreakerContext, BreakerEvent, undefined, BreakerEvent, never>(
    ({ context, event }) =>
      opening(
        context,
        reason,
        eventTime(event, context.openedAt ?? 0),
        context.config.resetTimeout,
      ),
  );
}

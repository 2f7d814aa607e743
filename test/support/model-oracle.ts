import type { BreakerConfig, CircuitState } from 'statebreaker';
import type { BreakerPath, BreakerStep } from 'statebreaker/testing';

/**
 * The breaker's rules as DESIGN.md and the options' documentation state them (consecutive
 * failures with a quorum of instances, the failure-rate and slow-call windows, backoff,
 * retry-after), written by hand without XState. Paths come
 * from `breakerMachine` and the breaker runs `breakerMachine`, so a wrong machine would agree
 * with itself; checking every path against this reference is what catches it.
 */
interface Reference {
  state: CircuitState;
  failures: number;
  successes: number;
  /** Live probe name → lease deadline. */
  probes: Map<string, number>;
  openedAt: number;
  now: number;
  /** Whether any call may be stale: the state has changed at least once. */
  changed: boolean;
  /** How long the current open lasts. */
  openFor: number;
  /** Instances in the current failure streak. */
  streak: Set<string>;
  /** The window of the current closed period. */
  window: {
    calls: number;
    failures: number;
    slow: number;
    failing: Set<string>;
    slowing: Set<string>;
  };
}

function emptyWindow(): Reference['window'] {
  return { calls: 0, failures: 0, slow: 0, failing: new Set(), slowing: new Set() };
}

function moveTo(ref: Reference, state: CircuitState, openFor?: number): void {
  ref.state = state;
  ref.failures = 0;
  ref.successes = 0;
  ref.probes.clear();
  ref.streak.clear();
  ref.window = emptyWindow();
  ref.changed = true;
  if (state === 'open') ref.openedAt = ref.now;
  if (openFor !== undefined) ref.openFor = openFor;
}

// The upstream's value, between the floor (1 s unless configured) and backoff.max (or 10
// minutes without backoff).
function retryAfterFor(config: BreakerConfig, ms: number): number {
  const floor = config.retryAfterFloor ?? 1_000;
  const max = Math.max(config.backoffMax ?? 600_000, floor);
  return Math.min(Math.max(ms, floor), max);
}

function reopenFor(config: BreakerConfig, last: number): number {
  if (config.backoffMultiplier === undefined) return config.resetTimeout;
  const grown = Math.max(last * config.backoffMultiplier, config.resetTimeout);
  return Math.min(grown, config.backoffMax ?? grown);
}

// A counted call in closed: the consecutive rule first, then the window's rules.
function countInClosed(ref: Reference, config: BreakerConfig, step: BreakerStep): void {
  const failed = step.kind === 'fail' || step.kind === 'slowFail';
  const slow =
    config.slowCallDuration !== undefined &&
    (step.kind === 'slowSucceed' || step.kind === 'slowFail') &&
    (step.ms ?? 0) >= config.slowCallDuration;
  const instance = step.instance === undefined ? '' : `i${step.instance}`;
  const quorum = config.quorum ?? 1;
  if (failed && step.retryAfterMs !== undefined) {
    moveTo(ref, 'open', retryAfterFor(config, step.retryAfterMs));
    return;
  }
  if (failed && config.failMax !== Number.POSITIVE_INFINITY) {
    if (ref.streak.size < quorum && quorum > 1) ref.streak.add(instance);
    const reached = ref.failures + 1 >= config.failMax;
    if (reached && (quorum <= 1 || ref.streak.size >= quorum)) {
      moveTo(ref, 'open', config.resetTimeout);
      return;
    }
    ref.failures = Math.min(ref.failures + 1, config.failMax - 1);
  }
  if (!failed) {
    ref.failures = 0;
    ref.streak.clear();
  }
  if (config.window === undefined) return;
  const w = ref.window;
  w.calls++;
  if (failed) w.failures++;
  if (slow) w.slow++;
  if (quorum > 1 && failed) w.failing.add(instance);
  if (quorum > 1 && slow) w.slowing.add(instance);
  const enough = w.calls >= (config.minimumCalls ?? 1);
  const rate = config.failureRateThreshold;
  const slowRate = config.slowCallRateThreshold;
  if (
    enough &&
    rate !== undefined &&
    (100 * w.failures) / w.calls >= rate &&
    (quorum <= 1 || w.failing.size >= quorum)
  ) {
    moveTo(ref, 'open', config.resetTimeout);
  } else if (
    enough &&
    slowRate !== undefined &&
    (100 * w.slow) / w.calls >= slowRate &&
    (quorum <= 1 || w.slowing.size >= quorum)
  ) {
    moveTo(ref, 'open', config.resetTimeout);
  }
}

/** Checks a path step by step; returns the first disagreement, or `null`. */
export function checkAgainstReference(path: BreakerPath, config: BreakerConfig): string | null {
  const ref: Reference = {
    state: 'closed',
    failures: 0,
    successes: 0,
    probes: new Map(),
    openedAt: 0,
    now: 0,
    changed: false,
    openFor: config.resetTimeout,
    streak: new Set(),
    window: emptyWindow(),
  };
  for (const [index, step] of path.steps.entries()) {
    const where = `step ${index + 1} (${step.label})`;
    const blocked = ref.state === 'open' || ref.state === 'forcedOpen';
    switch (step.kind) {
      case 'succeed':
      case 'fail':
      case 'ignore':
      case 'slowSucceed':
      case 'slowFail':
        if (ref.state === 'halfOpen') return `${where}: half-open calls are probes`;
        if (Boolean(step.rejects) !== blocked) return `${where}: rejects should be ${blocked}`;
        if (step.kind === 'slowSucceed' || step.kind === 'slowFail') {
          if (ref.state !== 'closed') return `${where}: slow calls are made in closed`;
          ref.now += step.ms ?? 0;
        }
        if (ref.state !== 'closed' || step.kind === 'ignore') break;
        countInClosed(ref, config, step);
        break;
      case 'startProbe': {
        if (ref.state !== 'halfOpen') return `${where}: probes start only in half-open`;
        const full = ref.probes.size >= config.halfOpenMaxCalls;
        if (Boolean(step.rejects) !== full) return `${where}: rejects should be ${full}`;
        if (!full) ref.probes.set(step.probe as string, ref.now + config.probeLease);
        break;
      }
      case 'succeedProbe':
      case 'failProbe':
      case 'ignoreProbe':
        if (!ref.probes.delete(step.probe as string)) return `${where}: no live probe`;
        if (step.kind === 'failProbe') {
          const retry = step.retryAfterMs;
          moveTo(
            ref,
            'open',
            retry === undefined ? reopenFor(config, ref.openFor) : retryAfterFor(config, retry),
          );
        }
        if (step.kind === 'succeedProbe' && ++ref.successes >= config.successThreshold) {
          moveTo(ref, 'closed');
        }
        break;
      case 'staleSucceed':
      case 'staleFail':
      case 'staleIgnore':
        if (!ref.changed) return `${where}: no call can be stale before any change`;
        break;
      case 'advance': {
        const ms = step.ms ?? 0;
        const deadline =
          ref.state === 'open'
            ? ref.openedAt + ref.openFor
            : ref.probes.size > 0
              ? Math.min(...ref.probes.values())
              : Number.POSITIVE_INFINITY;
        if (deadline !== Number.POSITIVE_INFINITY && ref.now + ms !== deadline) {
          return `${where}: should advance to the deadline, ${deadline - ref.now} ms`;
        }
        ref.now += ms;
        // The window holds nothing older than window + a tenth of it.
        if (config.window !== undefined && ms > config.window * 1.1) ref.window = emptyWindow();
        if (ref.now < deadline) break;
        if (ref.state === 'open') {
          moveTo(ref, 'halfOpen');
        } else {
          ref.now = deadline;
          moveTo(ref, 'open', reopenFor(config, ref.openFor));
        }
        break;
      }
      case 'forceOpen':
        if (ref.state !== 'forcedOpen') moveTo(ref, 'forcedOpen');
        break;
      case 'disable':
        if (ref.state !== 'disabled') moveTo(ref, 'disabled');
        break;
      case 'reset':
        if (ref.state === 'closed') {
          // With failures counted or a window, a reset starts a new generation: calls admitted
          // before it count no more.
          if (config.window !== undefined || ref.failures > 0 || ref.streak.size > 0) {
            ref.changed = true;
          }
          ref.failures = 0;
          ref.streak.clear();
          ref.window = emptyWindow();
        } else moveTo(ref, 'closed', config.resetTimeout);
        break;
    }
    const probes = [...ref.probes.keys()].sort();
    const got = `${step.expect} f${step.counters.failures} s${step.counters.successes} [${step.counters.probes}]`;
    const want = `${ref.state} f${ref.failures} s${ref.successes} [${probes}]`;
    if (got !== want) return `${where}: the path expects ${got}, the rules say ${want}`;
  }
  return null;
}

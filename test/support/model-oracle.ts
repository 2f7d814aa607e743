import type { BreakerConfig, CircuitState } from 'statebreaker';
import type { BreakerPath } from 'statebreaker/testing';

/**
 * The breaker's rules as DESIGN.md states them, written by hand without XState. Paths come
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
}

function moveTo(ref: Reference, state: CircuitState): void {
  ref.state = state;
  ref.failures = 0;
  ref.successes = 0;
  ref.probes.clear();
  ref.changed = true;
  if (state === 'open') ref.openedAt = ref.now;
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
  };
  for (const [index, step] of path.steps.entries()) {
    const where = `step ${index + 1} (${step.label})`;
    const blocked = ref.state === 'open' || ref.state === 'forcedOpen';
    switch (step.kind) {
      case 'succeed':
      case 'fail':
      case 'ignore':
        if (ref.state === 'halfOpen') return `${where}: half-open calls are probes`;
        if (Boolean(step.rejects) !== blocked) return `${where}: rejects should be ${blocked}`;
        if (ref.state !== 'closed') break;
        if (step.kind === 'succeed') ref.failures = 0;
        if (step.kind === 'fail' && ++ref.failures >= config.failMax) moveTo(ref, 'open');
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
        if (step.kind === 'failProbe') moveTo(ref, 'open');
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
            ? ref.openedAt + config.resetTimeout
            : ref.probes.size > 0
              ? Math.min(...ref.probes.values())
              : Number.POSITIVE_INFINITY;
        if (deadline !== Number.POSITIVE_INFINITY && ref.now + ms !== deadline) {
          return `${where}: should advance to the deadline, ${deadline - ref.now} ms`;
        }
        ref.now += ms;
        if (ref.now < deadline) break;
        if (ref.state === 'open') {
          moveTo(ref, 'halfOpen');
        } else {
          ref.now = deadline;
          moveTo(ref, 'open');
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
        if (ref.state === 'closed') ref.failures = 0;
        else moveTo(ref, 'closed');
        break;
    }
    const probes = [...ref.probes.keys()].sort();
    const got = `${step.expect} f${step.counters.failures} s${step.counters.successes} [${step.counters.probes}]`;
    const want = `${ref.state} f${ref.failures} s${ref.successes} [${probes}]`;
    if (got !== want) return `${where}: the path expects ${got}, the rules say ${want}`;
  }
  return null;
}

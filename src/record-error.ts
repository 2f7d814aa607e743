import type { BreakerCore } from './breaker-core.js';
import type { Outcome } from './options.js';
import { outcomeOf, retryAfterOf } from './outcome-of.js';

/** How `error` counts for the breaker of `core`, recording nothing. */
export function outcomeIn(
  core: BreakerCore,
  error: unknown,
  signal: AbortSignal | undefined,
): Outcome {
  return outcomeOf(error, signal, core.classify, core.events, core.name);
}

/**
 * Classifies and records a call's error: a failure is sent to the statechart and counted in the
 * window, an ignored probe frees its slot; the exporters and listeners hear it.
 */
export function recordError(
  core: BreakerCore,
  error: unknown,
  generation: number,
  probeId: string | undefined,
  signal: AbortSignal | undefined,
  started: number,
  since: number,
): Outcome {
  const outcome = outcomeIn(core, error, signal);
  if (outcome === 'success') {
    core.recordSuccess(generation, probeId, started, since);
    return outcome;
  }
  const durationMs = core.clockStop(started);
  const { replica, instance } = core;
  const at = core.clock.now();
  if (outcome === 'failure') {
    const retryAfterMs = retryAfterOf(error, core.retryAfter, core.events, core.name);
    replica.send(
      retryAfterMs === undefined
        ? { type: 'FAILURE', generation, probeId, instance, at }
        : { type: 'FAILURE', generation, probeId, instance, retryAfterMs, at },
    );
    // After the event: a failure that tripped the circuit belongs to no window any more.
    if (core.window !== undefined && probeId === undefined) {
      core.window.count(generation, true, since, core.slowMs);
    }
    core.hooks.failed(error, durationMs);
  } else {
    // An ignored probe still frees its slot; an ignored call in closed changes nothing.
    if (probeId !== undefined) replica.send({ type: 'IGNORED', generation, probeId, at });
    core.hooks.ignored(error, durationMs);
  }
  return outcome;
}

/** The configuration of the records the regression tests write by hand. */
export const RECORD_CONFIG = {
  failMax: 2,
  resetTimeout: 60_000,
  successThreshold: 1,
  halfOpenMaxCalls: 1,
  probeLease: 60_000,
};

/**
 * A snapshot's JSON in the current format (schema 1), as another instance would write it: the
 * statechart's `value`, and its context with `context` over a closed breaker's.
 */
export function snapshotJson(
  value: unknown,
  context: Record<string, unknown> = {},
  writeId = 'another-instance:1',
): string {
  return JSON.stringify({
    schema: 1,
    writeId,
    status: 'active',
    value,
    historyValue: {},
    children: {},
    context: {
      config: RECORD_CONFIG,
      failures: 0,
      successes: 0,
      openedAt: null,
      probes: {},
      generation: 0,
      reason: 'init',
      ...context,
    },
  });
}

import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { type BreakerEvent, breakerMachine } from '../src/index.js';

const config = {
  failMax: 1,
  resetTimeout: 30_000,
  successThreshold: 1,
  halfOpenMaxCalls: 1,
  probeLease: 1_000,
};

type Snapshot = ReturnType<typeof initialTransition<typeof breakerMachine>>[0];

function run(...events: BreakerEvent[]): Snapshot {
  let [snapshot] = initialTransition(breakerMachine, config);
  for (const event of events) [snapshot] = transition(breakerMachine, snapshot, event);
  return snapshot;
}

const trip: BreakerEvent = { type: 'FAILURE', generation: 0, at: 100 };

describe('the statechart: a route’s early probe (PANIC_PROBE)', () => {
  it('half-opens an open circuit with the early probe holding a slot', () => {
    const s = run(trip, {
      type: 'PANIC_PROBE',
      probeId: 'x',
      leaseUntil: 1_300,
      generation: 1,
      at: 300,
    });
    expect(s.value).toEqual({ halfOpen: 'probing' });
    expect(s.context).toMatchObject({
      probes: { x: 1_300 },
      generation: 2,
      reason: 'panicProbe',
      successes: 0,
    });
  });

  it('is refused for another open period than the one the route judged', () => {
    const s = run(trip, {
      type: 'PANIC_PROBE',
      probeId: 'x',
      leaseUntil: 1_300,
      generation: 0,
      at: 300,
    });
    expect(s.value).toBe('open');
  });

  it('counts against halfOpenMaxCalls: a second early probe is refused', () => {
    const s = run(
      trip,
      { type: 'PANIC_PROBE', probeId: 'x', leaseUntil: 1_300, generation: 1, at: 300 },
      { type: 'PANIC_PROBE', probeId: 'y', leaseUntil: 1_300, generation: 2, at: 300 },
      { type: 'PROBE_ACQUIRED', probeId: 'z', leaseUntil: 1_300, at: 300 },
    );
    expect(Object.keys(s.context.probes)).toEqual(['x']);
  });

  it('closes on its success and reopens on its failure, like any probe', () => {
    const probe: BreakerEvent = {
      type: 'PANIC_PROBE',
      probeId: 'x',
      leaseUntil: 1_300,
      generation: 1,
      at: 300,
    };
    expect(run(trip, probe, { type: 'SUCCESS', generation: 2, probeId: 'x', at: 400 }).value).toBe(
      'closed',
    );
    const failed = run(trip, probe, { type: 'FAILURE', generation: 2, probeId: 'x', at: 400 });
    expect(failed.value).toBe('open');
    expect(failed.context).toMatchObject({ reason: 'probeFailed', openedAt: 400 });
  });

  it('is ignored outside open', () => {
    const s = run({ type: 'PANIC_PROBE', probeId: 'x', leaseUntil: 1_300, generation: 0, at: 300 });
    expect(s.value).toBe('closed');
  });
});

describe('the statechart: a probe renewing its lease (PROBE_RENEWED)', () => {
  const halfOpen: BreakerEvent[] = [
    trip,
    { type: 'PANIC_PROBE', probeId: 'x', leaseUntil: 1_300, generation: 1, at: 300 },
  ];

  it('extends the live probe’s lease', () => {
    const s = run(...halfOpen, {
      type: 'PROBE_RENEWED',
      probeId: 'x',
      leaseUntil: 2_000,
      generation: 2,
      at: 1_000,
    });
    expect(s.context.probes).toEqual({ x: 2_000 });
  });

  it('never shortens a lease, nor renews another generation’s or an unknown probe', () => {
    const events: BreakerEvent[] = [
      { type: 'PROBE_RENEWED', probeId: 'x', leaseUntil: 1_200, generation: 2, at: 1_000 },
      { type: 'PROBE_RENEWED', probeId: 'x', leaseUntil: 5_000, generation: 1, at: 1_000 },
      { type: 'PROBE_RENEWED', probeId: 'y', leaseUntil: 5_000, generation: 2, at: 1_000 },
    ];
    for (const event of events)
      expect(run(...halfOpen, event).context.probes).toEqual({ x: 1_300 });
  });
});

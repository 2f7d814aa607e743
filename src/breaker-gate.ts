import type { BreakerCore } from './breaker-core.js';
import { BreakerDisposedError } from './errors.js';
import type { BreakerGate, Ticket } from './gate.js';
import { instanceId } from './instance-id.js';
import { outcomeIn, recordError } from './record-error.js';
import type { CircuitState } from './state.js';

// Side tables, so that a breaker that never streams carries no field for streams: the stream
// deadlines of the breakers given one, and the gates built for attempts, streams and routes.
const streamDeadlines = new WeakMap<
  object,
  readonly [first: number | undefined, chunk: number | undefined]
>();
const gates = new WeakMap<object, BreakerGate>();

let probeCounter = 0;

/** Keeps a breaker's `firstChunkTimeout` and `chunkTimeout` for its gate. */
export function setStreamDeadlines(
  breaker: object,
  first: number | undefined,
  chunk: number | undefined,
): void {
  if (first !== undefined || chunk !== undefined) streamDeadlines.set(breaker, [first, chunk]);
}

/** The gate already built for `breaker`, if any. */
export function builtGate(breaker: object): BreakerGate | undefined {
  return gates.get(breaker);
}

/** Builds (once) the gate of `breaker`, whose private members `core` holds. */
export function buildGate(breaker: object, core: BreakerCore): BreakerGate {
  const deadlines = streamDeadlines.get(breaker);
  const { replica, clock } = core;
  const noTimeout = core.timeout === undefined;
  const ignoring = (reason: unknown) => AbortSignal.abort(reason);
  const gate: BreakerGate = {
    name: core.name,
    clock,
    timeout: core.timeout,
    firstChunkTimeout: deadlines?.[0],
    chunkTimeout: deadlines?.[1],
    get probeLease() {
      return replica.config.probeLease;
    },
    get fastPath() {
      return replica.loaded && !core.disposed && replica.state === 'closed' && noTimeout;
    },
    callFirst: (fn, value, next) => core.callFirst(fn, value, next),
    admit: (panicGeneration) => admit(core, panicGeneration),
    succeed: (t, since) => core.recordSuccess(t.generation, t.probeId, t.started, since),
    fail: (t, error, signal, since) =>
      recordError(core, error, t.generation, t.probeId, signal, t.started, since),
    // An error that is its signal's reason is ignored, whatever classify says.
    ignore: (t, reason) => {
      recordError(core, reason, t.generation, t.probeId, ignoring(reason), t.started, t.since);
    },
    outcomeOf: (error, signal) => outcomeIn(core, error, signal),
    renew: (t, leaseUntil) => {
      if (t.probeId === undefined) return;
      const { generation, probeId } = t;
      replica.send({ type: 'PROBE_RENEWED', probeId, leaseUntil, generation, at: clock.now() });
    },
  };
  gates.set(breaker, gate);
  return gate;
}

/** The ticket of a call admitted now (as the probe `probeId`, if any). */
export function ticketOf(core: BreakerCore, probeId: string | undefined): Ticket {
  return {
    generation: core.replica.generation,
    probeId,
    started: core.start(),
    since: core.since(),
    recorded: true,
  };
}

/** Admits a call in any state but closed-on-the-fast-path, or rejects. */
export async function admit(
  core: BreakerCore,
  panicGeneration: number | undefined,
): Promise<Ticket> {
  const replica = core.replica;
  if (!replica.loaded) await replica.ready;
  if (core.disposed) throw new BreakerDisposedError(core.name);
  const state = replica.state;
  if (state === 'disabled') {
    return {
      generation: replica.generation,
      probeId: undefined,
      started: -1,
      since: 0,
      recorded: false,
    };
  }
  if (state === 'halfOpen' || (state === 'open' && panicGeneration !== undefined)) {
    // A panic target that half-opened meanwhile takes an ordinary probe.
    const panic = state === 'open' ? panicGeneration : undefined;
    return ticketOf(core, await admitProbe(core, state, panic));
  }
  if (state !== 'closed') throw core.reject(state);
  return ticketOf(core, undefined);
}

// Half-open admission (or a route's early probe of an open circuit): the one step that waits
// for the store. Returns the probe's id, or undefined when the circuit closed meanwhile.
async function admitProbe(
  core: BreakerCore,
  state: CircuitState,
  panicGeneration: number | undefined,
): Promise<string | undefined> {
  const { replica, clock } = core;
  if (replica.probeCount >= replica.config.halfOpenMaxCalls) throw core.reject(state);
  let probeId: string | undefined = `${instanceId}:${++probeCounter}`;
  const at = clock.now();
  const leaseUntil = at + replica.config.probeLease;
  const admitted = replica.send(
    panicGeneration === undefined
      ? { type: 'PROBE_ACQUIRED', probeId, leaseUntil, at }
      : { type: 'PANIC_PROBE', probeId, leaseUntil, generation: panicGeneration, at },
  );
  if (!admitted) throw core.reject(replica.state);
  // Admission is the one step that waits for the store: the fleet shares the slots. The
  // local admission stands only when the store did not answer in time.
  const admission = await replica.admission(replica.lastSeq, core.store.timeout);
  if (admission === 'refused' && replica.holdsProbe(probeId)) {
    // The store answered, but only with other instances' writes: free the slot.
    replica.send({ type: 'IGNORED', generation: replica.generation, probeId, at: clock.now() });
  }
  if (!replica.holdsProbe(probeId)) {
    // The circuit may have closed (a reset, another instance's probe) during admission;
    // a closed or disabled circuit admits every call, so this one runs as an ordinary call.
    const now = replica.state;
    if (now !== 'closed' && now !== 'disabled') throw core.reject(now);
    probeId = undefined;
  }
  return probeId;
}

import {
  type BreakerConfig,
  type BreakerEvent,
  breakerMachine,
  type CircuitState,
  type Clock,
} from 'statebreaker';
import { type Actor, createActor, type StateValue } from 'xstate';

/** A call the model admitted: what the breaker will report its outcome under. */
export interface ModelCall {
  readonly generation: number;
  readonly probeId?: string;
}

/** How a call's error counts, as `classify` says. */
export type ModelOutcome = 'success' | 'failure' | 'ignored';

function topLevel(value: StateValue): CircuitState {
  return (typeof value === 'string' ? value : Object.keys(value)[0]) as CircuitState;
}

const OUTCOME_EVENT = { success: 'SUCCESS', failure: 'FAILURE', ignored: 'IGNORED' } as const;

/**
 * A bare actor of `breakerMachine`, driven with the events a breaker would send for the same
 * calls: the pure model a breaker's observable behaviour is compared with. It decides
 * admission exactly as the statechart does and nothing more.
 */
export class ModelBreaker {
  readonly #actor: Actor<typeof breakerMachine>;
  readonly #clock: Clock;
  #probes = 0;
  #sending = false;

  constructor(config: BreakerConfig, clock: Clock) {
    this.#clock = clock;
    const actor = createActor(breakerMachine, { input: config, clock });
    let state: CircuitState = 'closed';
    actor.subscribe((snapshot) => {
      const from = state;
      state = topLevel(snapshot.value);
      // As the breaker does: a lease timer that fired late opens the circuit with openedAt at
      // the lease deadline, and RESUME re-arms resetTimeout from there rather than from now.
      if (!this.#sending && from !== 'open' && state === 'open') {
        actor.send({ type: 'RESUME', at: clock.now() });
      }
    });
    this.#actor = actor.start();
  }

  get state(): CircuitState {
    return topLevel(this.#actor.getSnapshot().value);
  }

  get counters(): { failures: number; successes: number; probes: number } {
    const { failures, successes, probes } = this.#actor.getSnapshot().context;
    return { failures, successes, probes: Object.keys(probes).length };
  }

  /** Starts a call: `null` when the circuit rejects it. */
  admit(): ModelCall | null {
    const snapshot = this.#actor.getSnapshot();
    const { generation, config } = snapshot.context;
    switch (this.state) {
      case 'closed':
      case 'disabled':
        return { generation };
      case 'open':
      case 'forcedOpen':
        return null;
      case 'halfOpen': {
        const at = this.#clock.now();
        const probeId = `model-${++this.#probes}`;
        this.#send({ type: 'PROBE_ACQUIRED', probeId, leaseUntil: at + config.probeLease, at });
        return probeId in this.#actor.getSnapshot().context.probes ? { generation, probeId } : null;
      }
    }
  }

  /** Records the outcome of an admitted call. */
  settle(call: ModelCall, outcome: ModelOutcome): void {
    const at = this.#clock.now();
    this.#send({
      type: OUTCOME_EVENT[outcome],
      generation: call.generation,
      probeId: call.probeId,
      at,
    });
  }

  operate(kind: 'FORCE_OPEN' | 'DISABLE' | 'RESET'): void {
    this.#send({ type: kind, at: this.#clock.now() });
  }

  stop(): void {
    this.#actor.stop();
  }

  #send(event: BreakerEvent): void {
    this.#sending = true;
    try {
      this.#actor.send(event);
    } finally {
      this.#sending = false;
    }
  }
}

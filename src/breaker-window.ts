import type { Clock } from './clock.js';
import { asError } from './errors.js';
import type { Emitter } from './events.js';
import type { BreakerConfig, BreakerEvent } from './machine.js';
import type { Replica } from './replica/replica.js';
import type { BreakerStore } from './stores/store.js';
import { LocalWindow, type WindowHost } from './window/local-window.js';
import { LastWindowCounts, type WindowRates } from './window/window-rates.js';

/**
 * A breaker's rate-rule window, only with a rate rule on: the instance's counts and their
 * flushes, and the fleet's counts the window last brought. It is the window's host, so that
 * the breaker pays no closure for it.
 */
export class BreakerWindow implements WindowHost {
  readonly #local: LocalWindow;
  readonly #last = new LastWindowCounts();
  readonly #name: string;
  readonly #replica: Replica;
  readonly #clock: Clock;
  readonly #events: Emitter;

  constructor(
    name: string,
    config: BreakerConfig,
    windowFlush: number,
    instance: string,
    store: BreakerStore,
    clock: Clock,
    replica: Replica,
    events: Emitter,
  ) {
    this.#name = name;
    this.#replica = replica;
    this.#clock = clock;
    this.#events = events;
    this.#local = new LocalWindow(name, config, windowFlush, instance, store, clock, this);
  }

  get generation(): number {
    return this.#replica.generation;
  }

  send(event: BreakerEvent): boolean {
    this.#last.heard(event);
    return this.#replica.send(event);
  }

  storeError(error: unknown): void {
    this.#events.emit('storeError', { name: this.#name, error: asError(error) });
  }

  // Counts an outcome when the call was admitted in `closed` and the statechart is still in that
  // generation: results of older generations count nowhere.
  count(generation: number, failed: boolean, since: number, slowMs: number | undefined): void {
    const replica = this.#replica;
    if (generation !== replica.generation || replica.state !== 'closed') return;
    const slow = slowMs !== undefined && this.#clock.now() - since >= slowMs;
    this.#local.count(generation, failed, slow);
  }

  /** The fleet's rates as of the last flush (see `CircuitBreaker.rates`). */
  rates(): WindowRates {
    const replica = this.#replica;
    return this.#last.rates(replica.config, replica.generation, this.#clock.now());
  }

  flush(): Promise<void> {
    return this.#local.flush();
  }

  dispose(): void {
    this.#local.dispose();
  }
}

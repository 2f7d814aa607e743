import {
  type BreakerInfo,
  type BreakerListing,
  escapeText,
  type FleetRates,
} from '../admin/view.js';
import type { BreakerTransition } from '../admin/watch.js';
import type { TransitionReason } from '../machine.js';
import type { CircuitState } from '../state.js';

// What the page is sent, as JSON: the fields a tile shows, without the stored record itself.

/** A readable breaker as the page shows it: the listing's fields but the stored record. */
export type BreakerView = Pick<
  BreakerInfo,
  | 'name'
  | 'corrupt'
  | 'state'
  | 'stateValue'
  | 'reason'
  | 'failures'
  | 'successes'
  | 'openedAt'
  | 'probes'
  | 'generation'
  | 'version'
  | 'config'
> & {
  /** The name as the page shows it: control characters and bidirectional marks escaped. */
  readonly label: string;
  /** How long the circuit stays open (resetTimeout, backoff or an upstream's retry-after), ms. */
  readonly openDuration: number;
  /**
   * The fleet's failure and slow-call rates over the window (percent, -1 below `minimumCalls`)
   * of a closed breaker with a rate rule, once read; else `null`.
   */
  readonly rates: FleetRates | null;
};

/** A breaker whose record cannot be restored. */
export interface CorruptView {
  readonly name: string;
  /** The name as the page shows it: control characters and bidirectional marks escaped. */
  readonly label: string;
  readonly corrupt: true;
  readonly problem: string;
  readonly key: string | null;
  readonly version: number;
}

/** A change of top-level state heard by the dashboard. */
export interface TransitionView {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  /** When the dashboard heard it, epoch ms on the store's clock. */
  readonly at: number;
  readonly version: number;
}

export function breakerView(
  listing: BreakerListing,
  rates: FleetRates | null = null,
): BreakerView | CorruptView {
  if (listing.corrupt) {
    return {
      name: listing.name,
      label: escapeText(listing.name),
      corrupt: true,
      problem: listing.problem,
      key: listing.key ?? null,
      version: listing.version,
    };
  }
  return {
    name: listing.name,
    label: escapeText(listing.name),
    corrupt: false,
    state: listing.state,
    stateValue: listing.stateValue,
    reason: listing.reason,
    failures: listing.failures,
    successes: listing.successes,
    openedAt: listing.openedAt,
    openDuration: listing.openDurationMs,
    probes: listing.probes,
    generation: listing.generation,
    version: listing.version,
    config: listing.config,
    rates,
  };
}

export function transitionView(transition: BreakerTransition): TransitionView {
  return {
    from: transition.from,
    to: transition.to,
    reason: transition.reason,
    at: transition.at,
    version: transition.version,
  };
}

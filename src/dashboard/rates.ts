import {
  type BreakerInfo,
  type BreakerListing,
  type FleetRates,
  fleetRates,
  hasRateRule,
} from '../admin/view.js';
import type { BreakerStore } from '../stores/store.js';

/** Windows read at once in one round of {@link LiveRates.poll}. */
const CONCURRENCY = 32;

/** Rates read for a breaker, and the generation whose window they count. */
interface Read {
  readonly generation: number;
  readonly rates: FleetRates;
}

// A window counts the calls of one closed period (a generation): only a closed breaker with a
// rate rule has rates to show.
function rated(listing: BreakerListing): listing is BreakerInfo {
  return (
    !listing.corrupt &&
    listing.state === 'closed' &&
    listing.config.window !== undefined &&
    hasRateRule(listing.config)
  );
}

/**
 * The fleet's failure and slow-call rates of `listing`, read from its window on the store;
 * `null` when it has none to show (not closed, no rate rule, a store that cannot read windows).
 */
export async function readRates(
  store: BreakerStore,
  listing: BreakerListing,
): Promise<FleetRates | null> {
  if (!rated(listing) || store.readWindow === undefined) return null;
  const counts = await store.readWindow(listing.name, {
    generation: listing.generation,
    at: store.clock.now(),
    window: listing.config.window as number,
  });
  return fleetRates(listing.config, counts);
}

/**
 * The rates of the breakers a dashboard shows. The window changes with every flush, which
 * writes no record, so the dashboard reads them (one script call per closed breaker with a rate
 * rule) while a page is open, and hears nothing of them otherwise.
 */
export class LiveRates {
  readonly #store: BreakerStore;
  readonly #read = new Map<string, Read>();

  constructor(store: BreakerStore) {
    this.#store = store;
  }

  /** The rates last read for `listing`, if they count its current generation. */
  of(listing: BreakerListing): FleetRates | null {
    if (!rated(listing)) return null;
    const read = this.#read.get(listing.name);
    return read !== undefined && read.generation === listing.generation ? read.rates : null;
  }

  /**
   * Reads the rates of every listing that has some, and calls `changed` for each whose rates
   * differ from those last read.
   * @throws the store's error when a read fails (the others are still read).
   */
  async poll(
    listings: readonly BreakerListing[],
    changed: (listing: BreakerInfo) => void,
  ): Promise<void> {
    const due = listings.filter(rated);
    for (const name of this.#read.keys()) {
      if (!due.some((listing) => listing.name === name)) this.#read.delete(name);
    }
    let failure: unknown;
    for (let at = 0; at < due.length; at += CONCURRENCY) {
      await Promise.all(
        due.slice(at, at + CONCURRENCY).map(async (listing) => {
          try {
            const rates = await readRates(this.#store, listing);
            if (rates === null) return;
            const before = this.of(listing);
            this.#read.set(listing.name, { generation: listing.generation, rates });
            if (before === null || JSON.stringify(before) !== JSON.stringify(rates)) {
              changed(listing);
            }
          } catch (error) {
            failure ??= error;
          }
        }),
      );
    }
    if (failure !== undefined) throw failure;
  }
}

import type { ServerResponse } from 'node:http';
import { type BreakerListing, writeNoLimit } from '../admin/view.js';
import { type BreakerWatch, watchBreakers } from '../admin/watch.js';
import type { BreakerStore } from '../stores/store.js';
import { HttpError } from './http.js';
import { LiveRates } from './rates.js';
import {
  type BreakerView,
  breakerView,
  type CorruptView,
  type TransitionView,
  transitionView,
} from './wire.js';

/** Transitions kept per breaker for pages that connect later. */
const HISTORY = 8;
// Proxies close a stream that stays silent; a comment line every so often keeps it open.
const HEARTBEAT_MS = 20_000;
// A page that stopped reading is dropped rather than buffered for without bound.
const MAX_BUFFERED = 1 << 20;
// How often the fleet's rates are read while a page is open (a flush writes no record to hear).
const RATES_MS = 1_000;
// Open pages at once: each costs a socket and up to MAX_BUFFERED of memory, and a reader needs
// no token, so the count is bounded.
const MAX_PAGES = 64;

/** What a page gets when it connects: every breaker and the transitions heard so far. */
export interface LiveSnapshot {
  /** The store's clock when sent, so that the page counts down on the store's time. */
  readonly now: number;
  readonly writable: boolean;
  readonly breakers: readonly (BreakerView | CorruptView)[];
  readonly transitions: Readonly<Record<string, readonly TransitionView[]>>;
}

/**
 * The breakers of a store as the dashboard follows them (one watch, whatever the number of
 * pages), and the pages listening through Server-Sent Events.
 */
export class LiveBreakers {
  readonly #store: BreakerStore;
  readonly #writable: boolean;
  readonly #watch: BreakerWatch;
  readonly #breakers = new Map<string, BreakerView | CorruptView>();
  readonly #history = new Map<string, TransitionView[]>();
  readonly #listings = new Map<string, BreakerListing>();
  readonly #rates: LiveRates;
  readonly #pages = new Set<ServerResponse>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #ratesTimer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  /** Resolves once the store was read; rejects when it did not answer. */
  readonly ready: Promise<void>;

  constructor(store: BreakerStore, writable: boolean) {
    this.#store = store;
    this.#writable = writable;
    this.#rates = new LiveRates(store);
    this.#watch = watchBreakers(
      store,
      (transition) => {
        const view = transitionView(transition);
        const history = this.#history.get(transition.name) ?? [];
        history.push(view);
        if (history.length > HISTORY) history.shift();
        this.#history.set(transition.name, history);
        this.#send('transition', { name: transition.name, transition: view });
      },
      {
        onChange: (listing) => this.#show(listing),
        // Lost with the store's data, or an idle record that expired: the tile goes too (and
        // its rates are no longer read).
        onRemove: (name) => {
          this.#listings.delete(name);
          this.#breakers.delete(name);
          this.#history.delete(name);
          this.#send('removed', { name });
        },
        onError: (error) => this.#send('problem', { message: error.message }),
      },
    );
    this.ready = this.#watch.ready.then((listings) => {
      for (const listing of listings) {
        this.#listings.set(listing.name, listing);
        this.#breakers.set(listing.name, breakerView(listing));
      }
    });
  }

  #show(listing: BreakerListing): void {
    this.#listings.set(listing.name, listing);
    const view = breakerView(listing, this.#rates.of(listing));
    this.#breakers.set(listing.name, view);
    this.#send('breaker', { breaker: view });
  }

  // One round at a time, the next a while after the last ended: a slow store is not piled on.
  // A page that connects gets a round at once.
  #pollRates(): void {
    if (this.#pages.size === 0 || this.#polling) return;
    this.#polling = true;
    this.#stopRates();
    this.#rates
      .poll([...this.#listings.values()], (listing) => {
        // A newer record met meanwhile was shown with what was known of its own window.
        if (this.#listings.get(listing.name) === listing) this.#show(listing);
      })
      .catch((error: unknown) =>
        this.#send('problem', {
          message: `reading the fleet's rates: ${(error as Error).message}`,
        }),
      )
      .finally(() => {
        this.#polling = false;
        if (this.#pages.size === 0) return;
        this.#ratesTimer = setTimeout(() => this.#pollRates(), RATES_MS);
        this.#ratesTimer.unref();
      });
  }

  #stopRates(): void {
    clearTimeout(this.#ratesTimer);
    this.#ratesTimer = undefined;
  }

  snapshot(): LiveSnapshot {
    const breakers = [...this.#breakers.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    return {
      now: this.#store.clock.now(),
      writable: this.#writable,
      breakers,
      transitions: Object.fromEntries(this.#history),
    };
  }

  /**
   * Streams to `response` from now on: the snapshot first, then every change.
   * @throws HttpError 503 when MAX_PAGES pages already listen.
   */
  attach(response: ServerResponse): void {
    if (this.#pages.size >= MAX_PAGES) {
      throw new HttpError(503, `the dashboard serves at most ${MAX_PAGES} pages at once`);
    }
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // Tells nginx not to buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    response.write(`retry: 2000\n${event('snapshot', this.snapshot())}`);
    this.#pages.add(response);
    response.on('close', () => this.#detach(response));
    this.#pollRates();
    if (this.#heartbeat === undefined) {
      this.#heartbeat = setInterval(() => this.#write(':\n\n'), HEARTBEAT_MS);
      this.#heartbeat.unref();
    }
  }

  /** Ends every stream and stops following the store. */
  close(): void {
    this.#watch.close();
    for (const page of this.#pages) page.end();
    this.#pages.clear();
    this.#stopHeartbeat();
    this.#stopRates();
  }

  #detach(response: ServerResponse): void {
    this.#pages.delete(response);
    if (this.#pages.size === 0) {
      this.#stopHeartbeat();
      this.#stopRates();
    }
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #send(type: string, data: object): void {
    if (this.#pages.size === 0) return;
    this.#write(event(type, { now: this.#store.clock.now(), ...data }));
  }

  #write(text: string): void {
    for (const page of this.#pages) {
      if (page.writableLength > MAX_BUFFERED) {
        page.destroy();
        this.#detach(page);
        continue;
      }
      page.write(text);
    }
  }
}

// JSON.stringify escapes line breaks, so the data stays on the one `data:` line SSE reads.
function event(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify(data, writeNoLimit)}\n\n`;
}

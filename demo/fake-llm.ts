/**
 * An error answer of the simulated LLM endpoint, with its HTTP status and response headers,
 * shaped as the OpenAI and Anthropic SDKs shape theirs (`status`, `headers`).
 */
export class LlmError extends Error {
  override readonly name = 'LlmError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`${status} ${message}`);
  }
}

/** When the simulated endpoint rate-limits every request, and the `retry-after` it sends. */
export interface RateLimit {
  readonly from: number;
  readonly until: number;
  readonly retryAfterSeconds: number;
}

/** When the simulated endpoint is down, in milliseconds since the demo started. */
export interface Outage {
  readonly from: number;
  readonly until: number;
}

/** The longest prompt the simulated model accepts; longer ones get a 400. */
export const CONTEXT_LIMIT = 8_000;

/** A small seeded generator (mulberry32), so that every run draws the same latencies. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An in-process stand-in for an LLM completion API, one provider. It answers in 20-80 ms; during its outage
 * two in three requests get `503 Service Unavailable` and one in three hangs (an overloaded server) until the
 * caller aborts them. A prompt over {@link CONTEXT_LIMIT} characters gets a 400, which is the
 * caller's fault, not the endpoint's. During its rate limit every request gets `429 Too Many
 * Requests` with a `retry-after` header.
 */
export class FakeLlm {
  /** Requests that reached the endpoint (calls and streams). */
  requests = 0;
  /** Of which streams. */
  streams = 0;
  readonly #outage: Outage;
  readonly #rateLimit: RateLimit | undefined;
  readonly #elapsed: () => number;
  readonly #random: () => number;

  constructor(outage: Outage, elapsed: () => number, random: () => number, rateLimit?: RateLimit) {
    this.#outage = outage;
    this.#rateLimit = rateLimit;
    this.#elapsed = elapsed;
    this.#random = random;
  }

  /** Whether the endpoint is in its outage now. */
  get down(): boolean {
    const now = this.#elapsed();
    return now >= this.#outage.from && now < this.#outage.until;
  }

  /** Completes a prompt; rejects with {@link LlmError}, or with the signal's reason on abort. */
  async complete(prompt: string, signal: AbortSignal): Promise<string> {
    this.requests++;
    const down = this.down;
    if (down && this.#random() < 0.35) {
      await sleep(5_000, signal);
    }
    await sleep(20 + this.#random() * 60, signal);
    if (down) throw new LlmError(503, 'Service Unavailable');
    const limit = this.#rateLimit;
    const now = this.#elapsed();
    if (limit !== undefined && now >= limit.from && now < limit.until) {
      throw new LlmError(429, 'Too Many Requests', {
        'retry-after': String(limit.retryAfterSeconds),
      });
    }
    if (prompt.length > CONTEXT_LIMIT) {
      throw new LlmError(400, `context_length_exceeded: ${prompt.length} > ${CONTEXT_LIMIT}`);
    }
    return `completion of a ${prompt.length}-character prompt`;
  }

  /**
   * Streams a completion word by word, 10-30 ms apart. In its outage a stream gets a 503 before
   * its first word, or (one in three) stalls before it; a stream already under way when the
   * outage begins stalls between two words. A stall lasts until the caller aborts.
   */
  async *stream(prompt: string, signal: AbortSignal): AsyncGenerator<string> {
    this.requests++;
    this.streams++;
    await sleep(20 + this.#random() * 40, signal);
    if (this.down) {
      if (this.#random() < 0.35) await sleep(60_000, signal);
      throw new LlmError(503, 'Service Unavailable');
    }
    if (prompt.length > CONTEXT_LIMIT) {
      throw new LlmError(400, `context_length_exceeded: ${prompt.length} > ${CONTEXT_LIMIT}`);
    }
    for (let i = 0; i < 40; i++) {
      if (this.down) await sleep(60_000, signal);
      yield `word${i} `;
      await sleep(10 + this.#random() * 20, signal);
    }
  }
}

import type { Attempt } from '../attempt.js';
import type { Outcome } from '../options.js';

/** How an integration judges an error before it reaches the breaker: `llmClassify` by default. */
export type Classify = (error: unknown) => Outcome;

/**
 * Settles `attempt` as `classify` judges `error`: a failure is handed to the breaker (whose own
 * `classify` and `retryAfter` then apply), an ignored error is not counted, a success counts as
 * one. A `classify` that throws or answers nonsense counts the error as a failure, as the
 * breaker does.
 */
export function settleWith(attempt: Attempt, error: unknown, classify: Classify): void {
  let outcome: unknown;
  try {
    outcome = classify(error);
  } catch {
    outcome = 'failure';
  }
  if (outcome === 'ignored') attempt.ignore();
  else if (outcome === 'success') attempt.success();
  else attempt.failure(error);
}

/**
 * An abort controller that follows other signals: the request an integration sends is aborted by
 * the caller's signal always, and by the attempt's signal (the breaker's timeout) only until the
 * attempt settles, since `Attempt.ignore()` aborts its signal and an ignored 400 must still let
 * the SDK read the body that explains it.
 */
export class FollowingController extends AbortController {
  readonly #unfollows: (() => void)[] = [];

  /** Aborts this controller when `signal` aborts, until {@link unfollow}. */
  follow(signal: AbortSignal | undefined): this {
    if (signal === undefined) return this;
    if (signal.aborted) {
      this.abort(signal.reason);
      return this;
    }
    const onAbort = () => this.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.#unfollows.push(() => signal.removeEventListener('abort', onAbort));
    return this;
  }

  /** Stops following every signal given to {@link follow} since the last call. */
  unfollow(): void {
    for (const unfollow of this.#unfollows.splice(0)) unfollow();
  }
}

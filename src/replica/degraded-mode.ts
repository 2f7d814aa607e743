import { RecordMeeting } from './record-meeting.js';

// Backoff of writes while the store fails.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * A replica's degraded mode: while the store fails (or does not answer in time), the local
 * statechart goes on deciding alone and listeners hear its changes as speculative; a change is
 * retried with backoff, or, with nothing to write, the record is read to learn whether the
 * store is back. Its own file because it is the one place that enters and leaves that mode, and
 * the only timer a replica keeps.
 */
export abstract class DegradedMode extends RecordMeeting {
  protected retryTimer: unknown;
  #retryDelay = RETRY_MIN_MS;

  answered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.#retryDelay = RETRY_MIN_MS;
    if (this.retryTimer !== undefined) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (this.disposed) return;
    this.hooks.recovered();
    // The retry timer just cleared may have been the one that would write a change whose write
    // failed (while a probe read was out, say): write it now that the store answers.
    if (this.dirty) this.write(0);
  }

  // Degraded without a store error to report (the write's own failure reports it).
  protected silent(error: unknown): void {
    if (this.degraded || this.disposed) return;
    this.degraded = true;
    this.#retryDelay = RETRY_MIN_MS;
    this.hooks.degraded(error);
    this.announceLocal();
  }

  // While the store fails, the local statechart goes on deciding; the write is retried with
  // backoff and reconciles by record order when the store answers again.
  protected storeFailed(error: unknown): void {
    if (this.disposed) return;
    this.hooks.storeError(error);
    if (!this.degraded) {
      this.degraded = true;
      this.#retryDelay = RETRY_MIN_MS;
      this.hooks.degraded(error);
      // A change whose write did not land stands alone from here: heard as speculative.
      this.announceLocal();
    } else {
      this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
    }
    this.settleWaiters('unanswered');
    if (this.retryTimer !== undefined) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.dirty) this.write(0);
      else this.#probeStore();
    }, this.#retryDelay);
  }

  // Degraded with nothing to write: read the record to learn whether the store is back.
  #probeStore(): void {
    if (this.disposed) return;
    this.store.load(this.name).then(
      (record) => {
        if (this.disposed) return;
        this.answered();
        if (record !== null) this.meet(record, 'read');
        else if (this.recordBase.version > 0 && this.idleBase()) {
          // The idle record it holds expired: nothing to write back.
          this.forgetBase();
        } else if (this.recordBase.version > 0) {
          // The store lost the record this instance holds: write it back.
          this.recordBase.overwrite(0, undefined);
          this.dirty = true;
          this.write(0);
        }
      },
      (error: unknown) => this.storeFailed(error),
    );
  }
}

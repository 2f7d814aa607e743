import type { Clock } from './clock.js';
import { CallTimeoutError } from './errors.js';

// Handed to functions when neither a timeout nor a caller's signal can abort them, so that
// the closed-circuit hot path allocates no AbortController.
export const NEVER_ABORTED = new AbortController().signal;

/**
 * Runs `fn` with a signal that aborts on the breaker's timeout or the caller's signal, and
 * settles as soon as either fires, even when `fn` ignores its signal.
 */
export function runCall<T>(
  fn: (signal: AbortSignal) => T | PromiseLike<T>,
  callerSignal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  clock: Clock,
  breaker: string,
): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let timer: unknown;
    const onAbort = () => {
      const reason: unknown = callerSignal?.reason;
      controller.abort(reason);
      finish();
      reject(reason);
    };
    const finish = () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onAbort);
    };
    if (timeoutMs !== undefined) {
      timer = clock.setTimeout(() => {
        timer = undefined;
        const error = new CallTimeoutError(breaker, timeoutMs);
        controller.abort(error);
        finish();
        reject(error);
      }, timeoutMs);
    }
    callerSignal?.addEventListener('abort', onAbort, { once: true });
    let pending: T | PromiseLike<T>;
    try {
      pending = fn(controller.signal);
    } catch (error) {
      finish();
      reject(error);
      return;
    }
    Promise.resolve(pending).then(
      (value) => {
        finish();
        resolve(value);
      },
      (error: unknown) => {
        finish();
        reject(error);
      },
    );
  });
}

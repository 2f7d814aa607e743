import { deferred } from './fake-upstream.js';

/**
 * An upstream stream the test drives chunk by chunk: `push`, `end`, `fail`. It records the
 * signal it was opened with, how often it was opened, and whether the consumer's stop reached it
 * (`returned`). A pull waits until the test pushes, so stalls are the test's to make.
 */
export function manualSource<T>() {
  const queue: Array<
    { kind: 'chunk'; value: T } | { kind: 'end' } | { kind: 'error'; error: unknown }
  > = [];
  let waiting: ReturnType<typeof deferred<void>> | undefined;
  const state = {
    opened: 0,
    signal: undefined as AbortSignal | undefined,
    returned: false,
    pulls: 0,
  };
  const wake = () => {
    waiting?.resolve();
    waiting = undefined;
  };
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]() {
      return {
        async next(): Promise<IteratorResult<T>> {
          state.pulls++;
          while (queue.length === 0) {
            waiting = deferred<void>();
            await waiting.promise;
          }
          const item = queue.shift() as (typeof queue)[number];
          if (item.kind === 'chunk') return { done: false, value: item.value };
          if (item.kind === 'end') return { done: true, value: undefined };
          throw item.error;
        },
        async return(): Promise<IteratorResult<T>> {
          state.returned = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return {
    state,
    /** The stream function for `breaker.stream`. */
    open: (signal: AbortSignal): AsyncIterable<T> => {
      state.opened++;
      state.signal = signal;
      return iterable;
    },
    push(...values: T[]) {
      for (const value of values) queue.push({ kind: 'chunk', value });
      wake();
    },
    end() {
      queue.push({ kind: 'end' });
      wake();
    },
    fail(error: unknown) {
      queue.push({ kind: 'error', error });
      wake();
    },
  };
}

/** An async generator of `chunks`, ending normally. */
export async function* chunksOf<T>(...chunks: T[]): AsyncGenerator<T> {
  for (const chunk of chunks) yield chunk;
}

/** Collects every chunk of `stream`. */
export async function collectAll<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

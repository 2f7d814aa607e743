import { describeValue } from '../validate.js';

/** What a stream's function may return: an async iterable or a web `ReadableStream`. */
export type StreamSource<T> = AsyncIterable<T> | ReadableStream<T>;

interface Reader<T> {
  read(): Promise<IteratorResult<T>>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

/**
 * The iterator over `source`'s chunks. A `ReadableStream` without async iteration (older
 * runtimes) is read through its reader, and cancelled when the consumer stops.
 * @throws TypeError naming what `fn` returned when it is neither.
 */
export function iteratorOf<T>(source: unknown, label: string): AsyncIterator<T> {
  if (source !== null && typeof source === 'object') {
    const iterate = (source as Partial<AsyncIterable<T>>)[Symbol.asyncIterator];
    if (typeof iterate === 'function') return iterate.call(source);
    const stream = source as { getReader?: () => Reader<T> };
    if (typeof stream.getReader === 'function') {
      const reader = stream.getReader();
      return {
        next: () => reader.read(),
        async return(value?: unknown) {
          await reader.cancel();
          reader.releaseLock();
          return { done: true, value: value as T };
        },
      };
    }
  }
  throw new TypeError(
    `${label} function must return an AsyncIterable or a ReadableStream, got ${describeValue(source)}`,
  );
}

/** Closes a source nobody will read (opened after its stream was stopped or cut). */
export function closeSource(source: unknown): void {
  try {
    iteratorOf(source, 'stream()')
      .return?.()
      ?.then(undefined, () => undefined);
  } catch {
    // Not a stream, or its cleanup failed: nothing left to close.
  }
}

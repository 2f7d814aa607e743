import { type AdmissionOptions, checkSignal, type panicProbe } from '../attempt.js';
import { checkDuration, describeValue } from '../validate.js';
import type { StreamSource } from './source.js';

/** The function a stream runs: given the stream's signal, it returns the upstream's chunks. */
export type StreamFunction<T> = (signal: AbortSignal) => StreamSource<T> | Promise<StreamSource<T>>;

/** Options of one stream (`breaker.stream`, `route.stream`). */
export interface StreamOptions {
  /** The caller's signal: aborting it stops the stream, which then counts as ignored. */
  signal?: AbortSignal;
  /** Milliseconds until the first chunk; the breaker's `firstChunkTimeout` (or `timeout`) by default. */
  firstChunkTimeout?: number;
  /** The longest gap between chunks in milliseconds; the breaker's `chunkTimeout` by default. */
  chunkTimeout?: number;
}

/** Stream options with a route's panic probe. */
export type StreamAdmissionOptions = StreamOptions & Pick<AdmissionOptions, typeof panicProbe>;

/** Validated stream options; `label` names the method for error messages. */
export function checkStreamOptions(label: string, options: unknown): StreamOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${label} options must be an object, got ${describeValue(options)}`);
  }
  const given = options as StreamOptions;
  const checked: StreamOptions = {};
  const signal = checkSignal(label, given.signal);
  if (signal !== undefined) checked.signal = signal;
  if (given.firstChunkTimeout !== undefined) {
    checked.firstChunkTimeout = checkDuration(
      `${label} option firstChunkTimeout`,
      given.firstChunkTimeout,
    );
  }
  if (given.chunkTimeout !== undefined) {
    checked.chunkTimeout = checkDuration(`${label} option chunkTimeout`, given.chunkTimeout);
  }
  return checked;
}

import { errorPartOf, isAnswerPart, type StreamPartLike } from './model-types.js';

/**
 * A model's stream as batches for a route: the parts before the answer (`stream-start`,
 * `response-metadata`) travel with the answer's first part, so that the route's first chunk is
 * the answer's and a target that fails before it can still be left for the next one. An
 * `{ type: 'error' }` part is thrown, so that the breaker counts it and the route fails over
 * when no answer reached the consumer yet.
 */
export async function* partBatches(
  stream: ReadableStream<StreamPartLike>,
): AsyncGenerator<StreamPartLike[]> {
  const reader = stream.getReader();
  let held: StreamPartLike[] | undefined = [];
  let finished = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      const part = next.value;
      const inBand = errorPartOf(part);
      if (inBand !== undefined) throw inBand.error;
      if (held === undefined) {
        yield [part];
      } else if (isAnswerPart(part)) {
        const batch = held;
        held = undefined;
        batch.push(part);
        yield batch;
      } else {
        held.push(part);
      }
    }
    finished = true;
    if (held !== undefined && held.length > 0) yield held;
  } finally {
    // A consumer that stopped early, or an error part: stop the provider's stream too.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/**
 * The server-sent events the LLM APIs send before the answer, carrying none of it: Anthropic's
 * `message_start`, `content_block_start` (an empty block) and `ping`; OpenAI Responses'
 * `response.created`, `response.in_progress`, `response.output_item.added` and
 * `response.content_part.added`. A stream that stalls after them has not begun its answer.
 */
const PREAMBLE_EVENTS = new Set([
  'message_start',
  'content_block_start',
  'ping',
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.content_part.added',
]);

const decoder = new TextDecoder();

/**
 * Whether a chunk of an event-stream body carries part of the answer: an event whose name is
 * not a preamble event's, or one without a name (OpenAI's Chat Completions). Comments (`:`
 * lines) and blank lines carry nothing. Read only until the first chunk; a chunk that splits an
 * event counts (the rule errs toward counting a first chunk early, never late).
 */
export function sseCarriesAnswer(chunk: unknown): boolean {
  if (!(chunk instanceof Uint8Array)) return true;
  const text = decoder.decode(chunk);
  for (const block of text.split(/\r?\n\r?\n/)) {
    let named: string | undefined;
    let fields = false;
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      fields = true;
      if (line.startsWith('event:')) named = line.slice(6).trim();
    }
    if (fields && (named === undefined || !PREAMBLE_EVENTS.has(named))) return true;
  }
  return false;
}

/**
 * An event-stream body whose preamble chunks travel with the answer's first chunk, so that a
 * route's first chunk is the answer's and a target that stalls after its preamble can still be
 * left for the next one.
 */
export async function* withPreambleHeld(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let held: Uint8Array[] | undefined = [];
  let finished = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      if (held === undefined) {
        yield next.value;
        continue;
      }
      held.push(next.value);
      if (sseCarriesAnswer(next.value)) {
        const batch = joinBytes(held);
        held = undefined;
        yield batch;
      }
    }
    finished = true;
    if (held !== undefined && held.length > 0) yield joinBytes(held);
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

function joinBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  let length = 0;
  for (const chunk of chunks) length += chunk.byteLength;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

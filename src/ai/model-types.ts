// The parts of the AI SDK's language-model interface this integration reads, written
// structurally so that one implementation serves `ai` 6 (`LanguageModelV3`, `specificationVersion:
// 'v3'`) and `ai` 7 (`LanguageModelV4`, `'v4'`) without importing either's types: the call
// options carry the caller's `abortSignal`, a stream result its `stream` of typed parts.

/** A language model's call options, as far as the breaker reads them. */
export interface CallOptionsLike {
  abortSignal?: AbortSignal | undefined;
}

/** A stream part: every part of every interface version has a `type`. */
export interface StreamPartLike {
  readonly type: string;
}

/** A language model's `doStream` result, as far as the breaker reads it. */
export interface StreamResultLike {
  readonly stream: ReadableStream<StreamPartLike>;
}

/** A language model of interface version 3 (`ai` 6) or 4 (`ai` 7). */
export interface LanguageModelLike {
  readonly specificationVersion: 'v3' | 'v4';
  readonly provider: string;
  readonly modelId: string;
  readonly supportedUrls: unknown;
  doGenerate(options: never): PromiseLike<unknown>;
  doStream(options: never): PromiseLike<StreamResultLike>;
}

/**
 * The parts that carry the answer (or end it): only these count as its first chunk. The others
 * say nothing of it yet: `stream-start`, `response-metadata`, `raw`, and the `*-start` parts
 * a provider sends when the upstream opens an empty block (Anthropic's `content_block_start`
 * becomes `text-start` before the model's first token), so that a stall before the first token
 * still breaches `firstChunkTimeout`.
 */
const ANSWER = new Set([
  'text-delta',
  'reasoning-delta',
  'reasoning-file',
  'tool-call',
  'tool-input-delta',
  'tool-result',
  'tool-approval-request',
  'file',
  'source',
  'finish',
  'error',
]);

/** Whether a part counts as a chunk of the answer for the first-chunk rule. */
export function isAnswerPart(part: StreamPartLike): boolean {
  return ANSWER.has(part.type);
}

/** The error of an `{ type: 'error' }` part: how providers report a failure mid-stream. */
export function errorPartOf(part: StreamPartLike): { error: unknown } | undefined {
  return part.type === 'error' ? { error: (part as { error?: unknown }).error } : undefined;
}

/** Whether a part completes the answer: providers send `finish` last, with the usage. */
export function isFinishPart(part: StreamPartLike): boolean {
  return part.type === 'finish';
}

// What the fake LLM server sends, framed as the real APIs frame it: OpenAI's Chat Completions
// and Responses APIs and Anthropic's Messages API, as JSON and as server-sent events. The real
// SDKs parse these, so the shapes follow the APIs' reference pages field for field where the
// SDKs' schemas read them.

/** The three APIs the fake server speaks. */
export type LlmRoute = 'chat' | 'responses' | 'messages';

/** The request path of each route. */
export const ROUTE_PATHS: Readonly<Record<LlmRoute, string>> = {
  chat: '/v1/chat/completions',
  responses: '/v1/responses',
  messages: '/v1/messages',
};

/** One server-sent event: an optional `event:` line and one `data:` line. */
export interface SseEvent {
  readonly event?: string;
  readonly data: string;
}

/** How an event goes on the wire: fields, then a blank line. */
export function frame({ event, data }: SseEvent): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${data}\n\n`;
}

const CREATED = 1_765_000_000;

/** The whole answer of a JSON (non-streamed) request. */
export function jsonBody(route: LlmRoute, model: string, pieces: readonly string[]): unknown {
  const text = pieces.join('');
  const outputTokens = pieces.length;
  switch (route) {
    case 'chat':
      return {
        id: 'chatcmpl-fake',
        object: 'chat.completion',
        created: CREATED,
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: {
          prompt_tokens: 5,
          completion_tokens: outputTokens,
          total_tokens: 5 + outputTokens,
        },
      };
    case 'responses':
      return responseObject(model, 'completed', [messageItem('completed', text)], outputTokens);
    case 'messages':
      return {
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 5, output_tokens: outputTokens },
      };
  }
}

function messageItem(status: 'in_progress' | 'completed', text: string | undefined) {
  return {
    type: 'message',
    id: 'msg_fake',
    status,
    role: 'assistant',
    content: text === undefined ? [] : [{ type: 'output_text', text, annotations: [] }],
  };
}

function responseObject(
  model: string,
  status: 'in_progress' | 'completed',
  output: unknown[],
  outputTokens: number | undefined,
) {
  return {
    id: 'resp_fake',
    object: 'response',
    created_at: CREATED,
    status,
    error: null,
    incomplete_details: null,
    model,
    output,
    usage:
      outputTokens === undefined
        ? null
        : {
            input_tokens: 5,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: 5 + outputTokens,
          },
  };
}

/**
 * The events of a streamed answer, split so that event `i + 1` of `body` carries `pieces[i]`:
 * `head` comes before the first piece, `body` holds one event per piece, `tail` ends the stream.
 */
export interface StreamEvents {
  readonly head: readonly SseEvent[];
  readonly body: readonly SseEvent[];
  readonly tail: readonly SseEvent[];
}

const json = (value: unknown) => JSON.stringify(value);

/** The server-sent events of a streamed answer. */
export function streamEvents(
  route: LlmRoute,
  model: string,
  pieces: readonly string[],
): StreamEvents {
  const text = pieces.join('');
  switch (route) {
    case 'chat': {
      const chunk = (delta: unknown, finish: string | null, usage?: unknown) =>
        json({
          id: 'chatcmpl-fake',
          object: 'chat.completion.chunk',
          created: CREATED,
          model,
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
          ...(usage === undefined ? {} : { usage }),
        });
      return {
        head: [{ data: chunk({ role: 'assistant', content: '', refusal: null }, null) }],
        body: pieces.map((piece) => ({ data: chunk({ content: piece }, null) })),
        tail: [
          { data: chunk({}, 'stop') },
          {
            data: json({
              id: 'chatcmpl-fake',
              object: 'chat.completion.chunk',
              created: CREATED,
              model,
              choices: [],
              usage: {
                prompt_tokens: 5,
                completion_tokens: pieces.length,
                total_tokens: 5 + pieces.length,
              },
            }),
          },
          { data: '[DONE]' },
        ],
      };
    }
    case 'responses': {
      let sequence = 0;
      const event = (type: string, fields: Record<string, unknown>): SseEvent => ({
        event: type,
        data: json({ type, sequence_number: sequence++, ...fields }),
      });
      const head = [
        event('response.created', {
          response: responseObject(model, 'in_progress', [], undefined),
        }),
        event('response.in_progress', {
          response: responseObject(model, 'in_progress', [], undefined),
        }),
        event('response.output_item.added', {
          output_index: 0,
          item: messageItem('in_progress', undefined),
        }),
        event('response.content_part.added', {
          item_id: 'msg_fake',
          output_index: 0,
          content_index: 0,
          part: { type: 'output_text', text: '', annotations: [] },
        }),
      ];
      const body = pieces.map((delta) =>
        event('response.output_text.delta', {
          item_id: 'msg_fake',
          output_index: 0,
          content_index: 0,
          delta,
          logprobs: [],
        }),
      );
      const tail = [
        event('response.output_text.done', {
          item_id: 'msg_fake',
          output_index: 0,
          content_index: 0,
          text,
          logprobs: [],
        }),
        event('response.content_part.done', {
          item_id: 'msg_fake',
          output_index: 0,
          content_index: 0,
          part: { type: 'output_text', text, annotations: [] },
        }),
        event('response.output_item.done', {
          output_index: 0,
          item: messageItem('completed', text),
        }),
        event('response.completed', {
          response: responseObject(
            model,
            'completed',
            [messageItem('completed', text)],
            pieces.length,
          ),
        }),
      ];
      return { head, body, tail };
    }
    case 'messages': {
      const event = (type: string, fields: Record<string, unknown>): SseEvent => ({
        event: type,
        data: json({ type, ...fields }),
      });
      return {
        head: [
          event('message_start', {
            message: {
              id: 'msg_fake',
              type: 'message',
              role: 'assistant',
              model,
              content: [],
              stop_reason: null,
              stop_sequence: null,
              usage: { input_tokens: 5, output_tokens: 1 },
            },
          }),
          event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
          event('ping', {}),
        ],
        body: pieces.map((piece) =>
          event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }),
        ),
        tail: [
          event('content_block_stop', { index: 0 }),
          event('message_delta', {
            delta: { stop_reason: 'end_turn', stop_sequence: null },
            usage: { output_tokens: pieces.length },
          }),
          event('message_stop', {}),
        ],
      };
    }
  }
}

/** The error body of each API for a status, as the real API words it. */
export function errorBody(route: LlmRoute, status: number): unknown {
  const [openAIType, openAICode, anthropicType] =
    status === 429
      ? ['requests', 'rate_limit_exceeded', 'rate_limit_error']
      : status === 400
        ? ['invalid_request_error', null, 'invalid_request_error']
        : status === 401
          ? ['invalid_request_error', 'invalid_api_key', 'authentication_error']
          : status === 529
            ? ['server_error', null, 'overloaded_error']
            : ['server_error', null, 'api_error'];
  const message = `fake upstream answers ${status}`;
  return route === 'messages'
    ? { type: 'error', error: { type: anthropicType, message } }
    : { error: { message, type: openAIType, param: null, code: openAICode } };
}

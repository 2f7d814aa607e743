// Errors built the way the official LLM SDKs build them, without depending on the SDKs: the
// same constructors, fields and class names, so the presets are tested against the shapes
// they meet in production. Copied in substance from:
// - openai-node v5 to v7.5 `src/core/error.ts` (headers: a fetch `Headers`);
// - openai-node v4.104 `src/error.ts` (headers: a plain object behind a Proxy that looks keys
//   up lower-cased, from `createResponseHeaders` in `src/core.ts`);
// - anthropic-sdk-typescript 0.120 `src/core/error.ts` (`type` from the body's `error.type`;
//   no `code`).
// Body fields are read loosely (`Record<string, unknown>`) as the SDKs read them with `any`.

type Body = Record<string, unknown> | undefined;

/** The header shape of openai-node v4: a plain object, keys read lower-cased by a Proxy. */
export type V4Headers = Record<string, string | null | undefined>;

/** openai-node v4's `createResponseHeaders(response.headers)`. */
export function v4ResponseHeaders(headers: Headers): V4Headers {
  const entries: Record<string, string> = {};
  headers.forEach((value, key) => {
    entries[key] = value;
  });
  return new Proxy(entries, {
    get(target, name) {
      const key = name.toString();
      return target[key.toLowerCase()] || target[key];
    },
  });
}

function field(body: Body, key: string): string | undefined {
  const value = body?.[key];
  return typeof value === 'string' ? value : undefined;
}

export namespace OpenAI {
  export class OpenAIError extends Error {}

  export class APIError<
    H extends Headers | V4Headers | undefined = Headers | undefined,
  > extends OpenAIError {
    readonly status: number | undefined;
    readonly headers: H;
    readonly error: Body;
    readonly code: string | null | undefined;
    readonly param: string | null | undefined;
    readonly type: string | undefined;

    constructor(status: number | undefined, error: Body, message: string | undefined, headers: H) {
      super(`${status ?? ''} ${field(error, 'message') ?? message ?? ''}`.trim());
      this.status = status;
      this.headers = headers;
      this.error = error;
      this.code = field(error, 'code');
      this.param = field(error, 'param');
      this.type = field(error, 'type');
    }

    /** `APIError.generate`: the body's `error` object becomes `error`, the class follows the status. */
    static generate<H extends Headers | V4Headers>(
      status: number,
      errorResponse: Body,
      message: string | undefined,
      headers: H,
    ): APIError<H> {
      const error = errorResponse?.error as Body;
      const Class =
        status === 400
          ? BadRequestError
          : status === 401
            ? AuthenticationError
            : status === 403
              ? PermissionDeniedError
              : status === 404
                ? NotFoundError
                : status === 409
                  ? ConflictError
                  : status === 422
                    ? UnprocessableEntityError
                    : status === 429
                      ? RateLimitError
                      : status >= 500
                        ? InternalServerError
                        : APIError;
      return new Class<H>(status, error, message, headers);
    }
  }

  export class APIUserAbortError extends APIError<undefined> {
    constructor({ message }: { message?: string } = {}) {
      super(undefined, undefined, message || 'Request was aborted.', undefined);
    }
  }

  export class APIConnectionError extends APIError<undefined> {
    constructor({ message, cause }: { message?: string; cause?: Error }) {
      super(undefined, undefined, message || 'Connection error.', undefined);
      if (cause) this.cause = cause;
    }
  }

  export class APIConnectionTimeoutError extends APIConnectionError {
    constructor({ message }: { message?: string } = {}) {
      super({ message: message ?? 'Request timed out.' });
    }
  }

  export class BadRequestError<H extends Headers | V4Headers | undefined> extends APIError<H> {}
  export class AuthenticationError<H extends Headers | V4Headers | undefined> extends APIError<H> {}
  export class PermissionDeniedError<
    H extends Headers | V4Headers | undefined,
  > extends APIError<H> {}
  export class NotFoundError<H extends Headers | V4Headers | undefined> extends APIError<H> {}
  export class ConflictError<H extends Headers | V4Headers | undefined> extends APIError<H> {}
  export class UnprocessableEntityError<
    H extends Headers | V4Headers | undefined,
  > extends APIError<H> {}
  export class RateLimitError<H extends Headers | V4Headers | undefined> extends APIError<H> {}
  export class InternalServerError<H extends Headers | V4Headers | undefined> extends APIError<H> {}

  /** From the parse helpers: the answer reached `max_tokens`. */
  export class LengthFinishReasonError extends OpenAIError {
    constructor() {
      super('Could not parse response content as the length limit was reached');
    }
  }

  /** From the parse helpers: the content filter stopped the answer. */
  export class ContentFilterFinishReasonError extends OpenAIError {
    constructor() {
      super('Could not parse response content as the request was rejected by the content filter');
    }
  }

  /** v7's `_makeUserAbortError(signal)`: the abort's reason becomes the `cause`. */
  export function userAbortError(signal: AbortSignal): APIUserAbortError {
    const error = new APIUserAbortError();
    Object.defineProperty(error, 'cause', {
      value: signal.reason,
      writable: true,
      configurable: true,
    });
    return error;
  }
}

export namespace Anthropic {
  export class AnthropicError extends Error {}

  export class APIError extends AnthropicError {
    readonly status: number | undefined;
    readonly headers: Headers | undefined;
    readonly error: Body;
    readonly type: string | null;

    constructor(
      status: number | undefined,
      error: Body,
      message: string | undefined,
      headers: Headers | undefined,
      type?: string | null,
    ) {
      const inner = error?.error as Body;
      super(`${status ?? ''} ${field(inner, 'message') ?? message ?? ''}`.trim());
      this.status = status;
      this.headers = headers;
      this.error = error;
      this.type = type ?? null;
    }

    /** `APIError.generate`: the whole body becomes `error`, its `error.type` the `type`. */
    static generate(
      status: number,
      errorResponse: Body,
      message: string | undefined,
      headers: Headers,
    ) {
      const type = field(errorResponse?.error as Body, 'type');
      const Class =
        status === 400
          ? BadRequestError
          : status === 401
            ? AuthenticationError
            : status === 403
              ? PermissionDeniedError
              : status === 404
                ? NotFoundError
                : status === 429
                  ? RateLimitError
                  : status >= 500
                    ? InternalServerError
                    : APIError;
      return new Class(status, errorResponse, message, headers, type);
    }
  }

  export class APIUserAbortError extends APIError {
    constructor({ message }: { message?: string } = {}) {
      super(undefined, undefined, message || 'Request was aborted.', undefined);
    }
  }

  export class APIConnectionError extends APIError {
    constructor({ message, cause }: { message?: string; cause?: Error }) {
      super(undefined, undefined, message || 'Connection error.', undefined);
      if (cause) this.cause = cause;
    }
  }

  export class APIConnectionTimeoutError extends APIConnectionError {
    constructor({ message }: { message?: string } = {}) {
      super({ message: message ?? 'Request timed out.' });
    }
  }

  export class BadRequestError extends APIError {}
  export class AuthenticationError extends APIError {}
  export class PermissionDeniedError extends APIError {}
  export class NotFoundError extends APIError {}
  export class RateLimitError extends APIError {}
  export class InternalServerError extends APIError {}

  /** An `error` event in a stream (`src/core/streaming.ts`): no status, the body's type. */
  export function streamError(body: Record<string, unknown>, headers: Headers): APIError {
    const type = field(body.error as Body, 'type');
    return new APIError(undefined, body, undefined, headers, type);
  }

  /** An Anthropic error body. */
  export function body(type: string, message = type): Record<string, unknown> {
    return { type: 'error', error: { type, message } };
  }
}

/** An OpenAI error body. */
export function openAIBody(
  message: string,
  type: string,
  code: string | null = null,
): Record<string, unknown> {
  return { error: { message, type, param: null, code } };
}

/**
 * An upstream's HTTP answer of status 400 or more, as `breakerFetch` and the AI SDK integration
 * hand it to the breaker (its `failure` events, its `classify` and `retryAfter`): `status` and
 * `headers` are those of the response, which `llmClassify` and `llmRetryAfter` read.
 */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  /** The response's status. */
  readonly status: number;
  /** The response's headers. */
  readonly headers: Headers;
  /** The request's URL. */
  readonly url: string;

  constructor(status: number, headers: Headers, url: string) {
    super(`${url} answered ${status}`);
    this.status = status;
    this.headers = headers;
    this.url = url;
  }
}

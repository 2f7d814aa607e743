/**
 * The upstream's `retry-after` in milliseconds, read from an error's response headers (a plain
 * object or a `Headers`, as the LLM SDKs keep them): `retry-after-ms`, or `retry-after` in
 * seconds or as an HTTP date. `undefined` when there is none or it cannot be read.
 */
export function retryAfterMs(error: unknown, now = Date.now()): number | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const headers = (error as { headers?: unknown }).headers;
  const header = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined;
    if (headers !== null && typeof headers === 'object') {
      const value = (headers as Record<string, unknown>)[name];
      return typeof value === 'string' ? value : undefined;
    }
    return undefined;
  };
  const ms = Number(header('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const text = header('retry-after');
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (text.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

// Reads one response header from whatever an error carries as `headers`: a fetch `Headers`
// (OpenAI and Anthropic SDKs since their fetch rewrite), a plain object keyed as the server
// sent them (OpenAI SDK v4 hands a case-insensitive Proxy over one), a `Map`, or Node's
// `IncomingHttpHeaders` (lower-case keys, arrays for repeated headers).

/** One header's value, looked up without regard to case; `undefined` when absent or unreadable. */
export function headerValue(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const lower = name.toLowerCase();
  const get = (headers as { get?: unknown }).get;
  if (typeof get === 'function') {
    const found = text(get.call(headers, lower));
    if (found !== undefined) return found;
    // A Map's keys keep their case, where a Headers' do not.
    if (typeof (headers as { entries?: unknown }).entries === 'function') {
      for (const [key, value] of (headers as Map<unknown, unknown>).entries()) {
        if (typeof key === 'string' && key.toLowerCase() === lower) return text(value);
      }
    }
    return undefined;
  }
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === lower) return text((headers as Record<string, unknown>)[key]);
  }
  return undefined;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) return text(value[0]);
  return undefined;
}

// The objects an error is made of, nearest first: the error, then what it wraps. SDK errors
// carry their status and headers themselves; an application's own error may wrap one as its
// `cause`, or wrap a fetch `Response` as `response` or `cause`; an SDK error's `error` is the
// response body, which may itself nest the upstream's `error` object.

// Deep enough for an application error around an SDK error around a fetch error around its
// socket error, and bounded for self-referencing causes.
const MAX_DEPTH = 4;
const LINKS = ['response', 'cause', 'error'] as const;

/** `error` and the objects it wraps, breadth-first, so that the outermost answer wins. */
export function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<object>();
  let level: unknown[] = [error];
  for (let depth = 0; depth <= MAX_DEPTH && level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const item of level) {
      if (item === null || typeof item !== 'object' || seen.has(item)) continue;
      seen.add(item);
      const record = item as Record<string, unknown>;
      yield record;
      for (const link of LINKS) next.push(record[link]);
    }
    level = next;
  }
}

/** A string property of `record`, or `undefined`. */
export function stringField(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The HTTP status of `record` when it has one (a whole number from 100 to 599): `status`, or
 * `statusCode` as the AI SDK's `APICallError` names it.
 */
export function httpStatus(record: Record<string, unknown>): number | undefined {
  const status = record.status ?? record.statusCode;
  return typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599
    ? status
    : undefined;
}

/** The class name of `record`: SDKs name their error classes but do not all set `name`. */
export function className(record: Record<string, unknown>): string | undefined {
  const ctor = record.constructor;
  return typeof ctor === 'function' ? ctor.name : undefined;
}

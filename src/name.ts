/** The longest breaker name, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 200;

// With the `u` flag a surrogate pair is one code point, so this matches only lone halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Refuses what cannot name a breaker: not a string, empty, longer than `MAX_NAME_LENGTH`, or not
 * well-formed UTF-16. A lone surrogate is refused because encoders (Redis keys are UTF-8) turn
 * every one into U+FFFD, so two different names would share one record.
 * @param who prefixes the message (`breaker name`, `RedisStore: breaker name`)
 * @throws TypeError or RangeError naming the problem.
 */
export function checkName(name: unknown, who = 'breaker name'): string {
  if (typeof name !== 'string') {
    throw new TypeError(`${who} must be a string, got ${typeof name}`);
  }
  if (name.length === 0) throw new RangeError(`${who} must not be empty`);
  if (name.length > MAX_NAME_LENGTH) {
    throw new RangeError(
      `${who} must be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`,
    );
  }
  const lone = LONE_SURROGATE.exec(name);
  if (lone !== null) {
    throw new RangeError(
      `${who} must be well-formed UTF-16: it holds a lone surrogate \\u${lone[0]
        .charCodeAt(0)
        .toString(16)
        .toUpperCase()} at index ${lone.index}`,
    );
  }
  return name;
}

import type { PersistedBreakerSnapshot, StoredRecord } from './store.js';

/** A change-feed message: the record a compare-and-set wrote, and whose it is. */
export interface ChangeMessage {
  readonly name: string;
  readonly record: StoredRecord;
}

function parseVersion(text: string): number | null {
  const version = Number(text);
  return Number.isSafeInteger(version) && version > 0 ? version : null;
}

function parseSnapshot(json: string): PersistedBreakerSnapshot | null {
  const snapshot: unknown = JSON.parse(json);
  if (snapshot === null || typeof snapshot !== 'object') return null;
  const { value, context } = snapshot as { value?: unknown; context?: unknown };
  if (value === undefined || context === null || typeof context !== 'object') return null;
  return snapshot as PersistedBreakerSnapshot;
}

/**
 * A record from its stored strings, or `null` when there is none.
 * @throws Error when the stored values are not a record (someone else wrote those keys).
 */
export function decodeRecord(
  version: string | null | undefined,
  snapshot: string | null | undefined,
): StoredRecord | null {
  if (version == null || snapshot == null) return null;
  const parsedVersion = parseVersion(version);
  const parsedSnapshot = parseSnapshot(snapshot);
  if (parsedVersion === null || parsedSnapshot === null) {
    throw new Error(`RedisStore: stored record is malformed (version ${JSON.stringify(version)})`);
  }
  return { version: parsedVersion, snapshot: parsedSnapshot };
}

/**
 * Decodes `version\nsnapshotJSON\nname`, as the compare-and-set script publishes it. JSON holds
 * no raw newline, so the first two newlines split the message even when the name has some.
 * Returns `null` for a message that is not one.
 */
export function decodeChange(message: string): ChangeMessage | null {
  const first = message.indexOf('\n');
  const second = first < 0 ? -1 : message.indexOf('\n', first + 1);
  if (second < 0) return null;
  try {
    const record = decodeRecord(message.slice(0, first), message.slice(first + 1, second));
    return record === null ? null : { name: message.slice(second + 1), record };
  } catch {
    return null;
  }
}

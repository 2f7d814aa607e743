import { CorruptRecordError } from '../../record/errors.js';
import type { StoredRecord, StoreFollower } from '../store.js';
import type { Decoded, RecordField } from './codec.js';
import type { BreakerKeys } from './keys.js';
import { problemText } from './resync.js';

/**
 * The breakers of this process that follow each name, and what the store tells them: every
 * record it meets for the name, a `CorruptRecordError` naming the key for what it cannot
 * restore. Each follower decides by record order what is news.
 */
export class Followers {
  readonly byName = new Map<string, StoreFollower[]>();
  /**
   * The last problem resync reported per name, so that a record nobody rewrites (an idle
   * breaker's) is reported once, not every resyncInterval.
   */
  readonly problems = new Map<string, string>();
  readonly #keys: (name: string) => BreakerKeys;
  readonly #channel: string;

  constructor(keys: (name: string) => BreakerKeys, channel: string) {
    this.#keys = keys;
    this.#channel = channel;
  }

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  add(name: string, follower: StoreFollower): void {
    const existing = this.byName.get(name);
    if (existing === undefined) this.byName.set(name, [follower]);
    else existing.push(follower);
  }

  /** Removes one follower; `true` when it was the name's last. */
  remove(name: string, follower: StoreFollower): boolean {
    const followers = this.byName.get(name);
    if (followers === undefined) return false;
    const at = followers.indexOf(follower);
    if (at >= 0) followers.splice(at, 1);
    if (followers.length > 0) return false;
    this.byName.delete(name);
    this.problems.delete(name);
    return true;
  }

  clear(): void {
    this.byName.clear();
  }

  /** The decoded record, or `null` after reporting why there is none to use. */
  usable(name: string, decoded: Decoded): StoredRecord | null {
    const { problem } = decoded;
    if (problem === undefined) {
      this.problems.delete(name);
    } else {
      if (this.byName.has(name)) this.problems.set(name, problemText(problem));
      this.report(name, problem.field, problem.problem);
    }
    return decoded.record;
  }

  report(name: string, field: RecordField | 'channel', problem: string): void {
    const followers = this.byName.get(name);
    if (followers === undefined) return;
    const key = field === 'channel' ? this.#channel : this.#keys(name)[field];
    const error = new CorruptRecordError(name, problem, key);
    for (const follower of followers) follower.problem?.(error);
  }

  /**
   * Hands a change message's record to the name's followers; `false` when the message could
   * not be restored (reported): the stored record must be read instead.
   */
  deliver(name: string, decoded: Decoded): boolean {
    const followers = this.byName.get(name);
    if (followers === undefined) return true;
    if (decoded.problem === undefined) {
      const { record } = decoded;
      if (record !== null) for (const follower of followers) follower.record(record);
      return true;
    }
    // A writer published what this statebreaker cannot restore (another schema, say).
    this.report(
      name,
      'channel',
      `change message: ${decoded.problem.field} ${decoded.problem.problem}`,
    );
    return false;
  }
}

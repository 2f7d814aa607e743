import type { RecordStamp } from '../../record/order.js';
import { breakerKeyBase, KEY_FIELDS } from './keys.js';
import type { RedisPort } from './port.js';
import { BATCH, type RecordReader, storedStamp } from './reader.js';
import type { RedisScripts } from './scripts.js';
import { keySlot } from './slots.js';

/** Breakers whose stamps a resync reads together. */
export interface StampBatch {
  readonly names: readonly string[];
  /**
   * The Cluster master whose slots they all hash to, as the client's slot map said when the
   * batch was made: one script on that node checks them. `undefined`: read as on standalone
   * Redis (one script per 500) or, on a Cluster, one call per breaker.
   */
  readonly node?: string | undefined;
}

/**
 * What a resync learned of a batch: by the breaker's place in the batch, the stored stamp of
 * every breaker that may differ from what its followers hold (`null`: no record). A breaker
 * left out holds what is stored.
 */
export type StoredStamps = ReadonlyMap<number, RecordStamp | null>;

/** A held stamp that never equals a stored one: the breaker is always read. */
const ALWAYS = '?';

/**
 * The stamp a breaker's followers hold, as `compareStamps-1.lua` compares it: `''` for no
 * record, `version:write id` for one; {@link ALWAYS} when they do not all hold the same, or when
 * its record must be judged again (one reported unreadable).
 */
export function heldText(held: readonly (RecordStamp | null)[], always: boolean): string {
  if (always) return ALWAYS;
  const [first = null] = held;
  const text = first === null ? '' : `${first.version}:${first.writeId ?? ''}`;
  const same = held.every((stamp) =>
    first === null
      ? stamp === null
      : stamp !== null && stamp.version === first.version && stamp.writeId === first.writeId,
  );
  return same ? text : ALWAYS;
}

// Redis before 7 (no shebang) or a server without the flag cannot compile the script.
const UNCOMPILABLE = /compil|shebang/i;

/**
 * Reads the stamps a resync compares. On standalone Redis: one `readStamps.lua` per 500
 * breakers. On a Cluster, where a script's declared keys must share one slot: the followed
 * breakers grouped by the master of their slot (the client's slot map), and one
 * `compareStamps-1.lua` per master per 500, which reads keys of every slot of its node
 * (`allow-cross-slot-keys`, Redis 7) and returns only the breakers that differ, sent on the
 * client's connection to that master (a redirection is not followed). A batch whose script fails
 * with Redis's answer (the map was stale or a slot is moving: a key the node no longer serves,
 * MOVED, ASK), or whose master the client holds no connection to, is read breaker by breaker,
 * each call routed by its own slot; a server that cannot compile the script (Redis 6) gets that
 * path for good.
 */
export class StampCheck {
  readonly #port: RedisPort;
  readonly #scripts: RedisScripts;
  readonly #reader: RecordReader;
  readonly #prefix: string;
  /** Whether checks go one script per node: a Cluster's, until it cannot compile the script. */
  #byNode: boolean;

  constructor(port: RedisPort, scripts: RedisScripts, reader: RecordReader, prefix: string) {
    this.#port = port;
    this.#scripts = scripts;
    this.#reader = reader;
    this.#prefix = prefix;
    this.#byNode = port.cluster && port.rawCommands;
  }

  /** `names` in batches of at most 500: on a Cluster, each of one master's breakers. */
  batches(names: readonly string[]): StampBatch[] {
    const groups = new Map<string | undefined, string[]>();
    if (this.#byNode) {
      for (const name of names) {
        const node = this.#port.slotMaster(keySlot(breakerKeyBase(this.#prefix, name)));
        const group = groups.get(node);
        if (group === undefined) groups.set(node, [name]);
        else group.push(name);
      }
    } else groups.set(undefined, [...names]);
    const batches: StampBatch[] = [];
    for (const [node, group] of groups) {
      for (let i = 0; i < group.length; i += BATCH) {
        batches.push({ names: group.slice(i, i + BATCH), node });
      }
    }
    return batches;
  }

  /**
   * The stored stamps of `batch` that may differ from `held` (each breaker's {@link heldText}).
   * Rejects only when Redis could not be asked.
   */
  async stamps(batch: StampBatch, held: readonly string[]): Promise<StoredStamps> {
    if (batch.node !== undefined && this.#byNode) {
      try {
        const differing = await this.#compare(batch.node, batch.names, held);
        if (differing !== undefined) return differing;
      } catch (error) {
        if (!this.#port.isReplyError(error)) throw error;
        if (UNCOMPILABLE.test(String((error as Error).message))) this.#byNode = false;
      }
    }
    const stamps = await this.#reader.readStamps(batch.names);
    return new Map(stamps.map((stamp, i) => [i, stamp]));
  }

  // `undefined` when the client holds no connection to `node` (a map older than its pool).
  async #compare(
    node: string,
    names: readonly string[],
    held: readonly string[],
  ): Promise<StoredStamps | undefined> {
    const bases = names.map((name) => breakerKeyBase(this.#prefix, name));
    const first = bases[0] as string;
    const args: string[] = [KEY_FIELDS.version, KEY_FIELDS.write, KEY_FIELDS.snapshot];
    bases.forEach((base, i) => {
      args.push(base, held[i] as string);
    });
    const call = this.#scripts.compareStamps(node, `${first}${KEY_FIELDS.version}`, ...args);
    if (call === undefined) return undefined;
    const reply = await call;
    const differing = new Map<number, RecordStamp | null>();
    for (let at = 0; at + 3 < reply.length; at += 4) {
      const stamp = storedStamp(reply[at + 1], reply[at + 2], reply[at + 3]);
      differing.set(Number(reply[at]) - 1, stamp);
    }
    return differing;
  }
}

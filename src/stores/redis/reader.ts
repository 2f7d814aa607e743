import type { RecordStamp } from '../../record/order.js';
import { parseVersion } from '../../record/validation.js';
import type { RecordEntry } from '../store.js';
import { bulk, type Decoded, decodeRecord, type RecordField, wrongFields } from './codec.js';
import { type BreakerKeys, breakerKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

// Breakers per read: one script call (standalone) reads this many records, or compares this
// many stamps (readStamps.lua), so an idle fleet's resync costs a few commands however many it
// follows.
export const BATCH = 500;

/** The raw values of one breaker's record, as `readRecords.lua` returns them. */
interface RawRecord {
  readonly snapshot: string | null;
  readonly version: string | null;
  readonly wrong: RecordField[];
}

function parsedJson(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Reads records in batches: whole records (`readRecords.lua`), entries for operator tools, or
 * only each record's stamp (`readStamps.lua`). One script call per 500 breakers on standalone
 * Redis; per breaker on a Cluster, where a script runs on one slot.
 */
export class RecordReader {
  readonly #scripts: RedisScripts;
  readonly #prefix: string;
  readonly #per: number;

  constructor(scripts: RedisScripts, prefix: string, cluster: boolean) {
    this.#scripts = scripts;
    this.#prefix = prefix;
    this.#per = cluster ? 1 : BATCH;
  }

  keys(name: string): BreakerKeys {
    return breakerKeys(this.#prefix, name);
  }

  async readMany(names: readonly string[]): Promise<Decoded[]> {
    const raws = await this.readRaw(names);
    return raws.map((raw) => decodeRecord(raw.version, raw.snapshot, raw.wrong));
  }

  // Entries for operator tools: a corrupt record keeps the version compare-and-set compares
  // with (0 when unreadable, as the script reads it) and its snapshot, parsed if it is JSON.
  async readEntries(names: readonly string[]): Promise<(RecordEntry | null)[]> {
    const raws = await this.readRaw(names);
    return names.map((name, i) => {
      const raw = raws[i] as RawRecord;
      const decoded = decodeRecord(raw.version, raw.snapshot, raw.wrong);
      if (decoded.problem === undefined) {
        return decoded.record === null ? null : { name, record: decoded.record };
      }
      const version = raw.wrong.includes('version') ? 0 : (parseVersion(raw.version ?? '') ?? 0);
      return {
        name,
        record: null,
        problem: decoded.problem.problem,
        key: this.keys(name)[decoded.problem.field],
        version,
        snapshot: raw.wrong.includes('snapshot') ? undefined : parsedJson(raw.snapshot),
      };
    });
  }

  async readRaw(names: readonly string[]): Promise<RawRecord[]> {
    const calls: Promise<unknown[]>[] = [];
    const keysOf = (name: string) => {
      const keys = this.keys(name);
      return [keys.snapshot, keys.version];
    };
    // A Cluster runs a script on one slot: one breaker per call there.
    for (let i = 0; i < names.length; i += this.#per) {
      calls.push(this.#scripts.readRecords(...names.slice(i, i + this.#per).flatMap(keysOf)));
    }
    const replies = (await Promise.all(calls)).flat();
    return names.map((_, i) => ({
      snapshot: bulk(replies[3 * i]),
      version: bulk(replies[3 * i + 1]),
      wrong: wrongFields(replies[3 * i + 2]),
    }));
  }

  /**
   * Version and write id of each record (see {@link storedStamp}), one script call per batch
   * (per breaker on a Cluster).
   */
  async readStamps(names: readonly string[]): Promise<(RecordStamp | null)[]> {
    const keysOf = (name: string) => {
      const keys = this.keys(name);
      return [keys.version, keys.write, keys.snapshot];
    };
    const calls: Promise<unknown[]>[] = [];
    for (let i = 0; i < names.length; i += this.#per) {
      calls.push(this.#scripts.readStamps(...names.slice(i, i + this.#per).flatMap(keysOf)));
    }
    const values = (await Promise.all(calls)).flat();
    return names.map((_, i) => storedStamp(values[3 * i], values[3 * i + 1], values[3 * i + 2]));
  }
}

/**
 * The stamp of a stored record from what `readStamps.lua` (or `compareStamps-1.lua`) read of it:
 * its version, its write id and its snapshot's length. `null`: no record; version 0: half a
 * record or an unreadable one, which differs from every stamp, so the whole record is read and
 * judged.
 */
export function storedStamp(version: unknown, write: unknown, length: unknown): RecordStamp | null {
  const raw = bulk(version);
  const writeId = bulk(write);
  const size = typeof length === 'number' ? length : 0;
  if (raw === null && size === 0) return null;
  return {
    version: raw !== null && size > 0 ? (parseVersion(raw) ?? 0) : 0,
    writeId: writeId !== null && writeId !== '' ? writeId : undefined,
  };
}

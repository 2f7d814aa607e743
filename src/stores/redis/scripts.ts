import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PortScript, RedisPort } from './port.js';

/** Reply codes of `compareAndSet-8.lua`. */
export const CasReply = { CONFLICT: 0, WRITTEN: 1, LATE: 2, FENCED: 3 } as const;

/**
 * `{WRITTEN, wrong types}`, `{CONFLICT, stored version, raw version, raw snapshot, wrong types}`,
 * `{LATE}` or `{FENCED, ms the fence lives}`. A missing raw value is `null` on Redis and
 * `false` on ioredis-mock: read it with `bulk()`.
 */
export type CasReplyValue =
  | readonly [typeof CasReply.LATE]
  | readonly [typeof CasReply.FENCED, number]
  | readonly [typeof CasReply.WRITTEN, string?]
  | readonly [typeof CasReply.CONFLICT, number, unknown, unknown, string];

/** The store's scripts, bound to the caller's client. */
export interface RedisScripts {
  /** `compareAndSet-8.lua`: the eight keys, then its sixteen arguments. */
  compareAndSet(...keysAndArgs: (string | number)[]): Promise<CasReplyValue>;
  /** `readRecords.lua`: snapshot and version keys of each breaker; three values per breaker. */
  readRecords(...keys: string[]): Promise<unknown[]>;
  /** `readStamps.lua`: version, write and snapshot keys of each breaker; three values each. */
  readStamps(...keys: string[]): Promise<unknown[]>;
  /**
   * `compareStamps-1.lua` on Cluster master `node`, over its own connection (see
   * `RedisPort.runScriptOn`): a key of the node, the field names of the version, write and
   * snapshot keys, then the key base and held stamp of each breaker; four values per breaker
   * that differs. `undefined` when the client holds no connection to `node`.
   */
  compareStamps(node: string, ...keysAndArgs: string[]): Promise<unknown[]> | undefined;
  /** `flushWindow-2.lua`: the window and flush-id keys, then eleven arguments; the window's totals. */
  flushWindow(...keysAndArgs: (string | number)[]): Promise<unknown[]>;
  /** `liftFence-1.lua`: the fence key and the operator's fence id; 1 when lifted. */
  liftFence(...keysAndArgs: string[]): Promise<number>;
}

function scriptFile(file: string): PortScript {
  const match = /^([A-Za-z]+)(?:-(\d+))?\.lua$/.exec(file);
  if (match === null) throw new Error(`script file ${file} is not named name[-keys].lua`);
  const lua = readFileSync(new URL(`../lua/${file}`, import.meta.url), 'utf8');
  const name = match[1] as string;
  const sha = createHash('sha1').update(lua).digest('hex');
  return {
    name,
    keys: match[2] === undefined ? undefined : Number(match[2]),
    lua,
    sha,
    // The command name carries a hash of the script, so that two copies of statebreaker (say
    // two versions in one dependency tree) on one ioredis client never overwrite each other's
    // `defineCommand`.
    command: `statebreaker_${name}_${sha.slice(0, 10)}`,
  };
}

// Run on one node, not routed by its key (see `RedisPort.runScriptOn`).
const COMPARE_STAMPS = scriptFile('compareStamps-1.lua');

const FILES = [
  scriptFile('compareAndSet-8.lua'),
  scriptFile('readRecords.lua'),
  scriptFile('readStamps.lua'),
  scriptFile('flushWindow-2.lua'),
  scriptFile('liftFence-1.lua'),
];

/**
 * Binds the store's scripts to a client port: each runs by its SHA1, its source sent on
 * NOSCRIPT. A script named `name-N.lua` takes its first N arguments as keys; one without a key
 * count takes every argument as a key.
 */
export function bindScripts(port: RedisPort): RedisScripts {
  const bound: Record<string, (...args: (string | number)[]) => Promise<unknown>> = {};
  for (const file of FILES) {
    const { keys } = file;
    bound[file.name] = (...args) =>
      keys === undefined
        ? port.runScript(file, args as string[], [])
        : port.runScript(file, args.slice(0, keys) as string[], args.slice(keys));
  }
  const compareStamps: RedisScripts['compareStamps'] = (node, key, ...args) =>
    port.runScriptOn(node, COMPARE_STAMPS, [key as string], args) as Promise<unknown[]> | undefined;
  return { ...(bound as unknown as RedisScripts), compareStamps };
}

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/** Reply codes of `compareAndSet-8.lua`. */
export const CasReply = { CONFLICT: 0, WRITTEN: 1, LATE: 2, FENCED: 3 } as const;

/**
 * `{WRITTEN, wrong types}`, `{CONFLICT, stored version, raw version, raw snapshot, wrong types}`
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
  /** `flushWindow-2.lua`: the window and flush-id keys, then eleven arguments; the window's totals. */
  flushWindow(...keysAndArgs: (string | number)[]): Promise<unknown[]>;
  /** `liftFence-1.lua`: the fence key and the operator's fence id; 1 when lifted. */
  liftFence(...keysAndArgs: string[]): Promise<number>;
}

type Command = (...args: unknown[]) => Promise<unknown>;

interface ScriptFile {
  readonly name: string;
  /** Keys per call, from the file name (`name-N.lua`); `undefined`: as many as each call gives. */
  readonly keys: number | undefined;
  readonly lua: string;
}

function scriptFile(file: string): ScriptFile {
  const match = /^([A-Za-z]+)(?:-(\d+))?\.lua$/.exec(file);
  if (match === null) throw new Error(`script file ${file} is not named name[-keys].lua`);
  const lua = readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
  return {
    name: match[1] as string,
    keys: match[2] === undefined ? undefined : Number(match[2]),
    lua,
  };
}

const FILES = [
  scriptFile('compareAndSet-8.lua'),
  scriptFile('readRecords.lua'),
  scriptFile('readStamps.lua'),
  scriptFile('flushWindow-2.lua'),
  scriptFile('liftFence-1.lua'),
];

// The command name carries a hash of the script, so that two copies of statebreaker (say two
// versions in one dependency tree) on one client never overwrite each other's `defineCommand`.
function commandName(file: ScriptFile): string {
  const hash = createHash('sha1').update(file.lua).digest('hex').slice(0, 10);
  return `statebreaker_${file.name}_${hash}`;
}

/**
 * Defines the store's scripts on `redis` (once per client and script version) and binds them.
 *
 * Every command is defined with its `numberOfKeys`. A script that takes as many keys as the call
 * gives is defined once per key count used (`name_N`): ioredis-mock runs a command defined
 * without `numberOfKeys` with the key count among its KEYS. Every such command is the same
 * script, cached once by Redis under one SHA1; a store uses a few counts (a batch of 500
 * breakers at most per call).
 */
export function defineScripts(redis: Redis | Cluster): RedisScripts {
  const commands = redis as unknown as Record<string, Command | undefined>;
  const command = (name: string, numberOfKeys: number, lua: string): Command => {
    if (typeof commands[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
    return commands[name] as Command;
  };
  const bound: Record<string, Command> = {};
  for (const file of FILES) {
    const name = commandName(file);
    const { keys, lua } = file;
    if (keys === undefined) {
      const byCount = new Map<number, Command>();
      bound[file.name] = (...args: unknown[]) => {
        let run = byCount.get(args.length);
        if (run === undefined) {
          run = command(`${name}_${args.length}`, args.length, lua);
          byCount.set(args.length, run);
        }
        return run.call(redis, ...args);
      };
    } else {
      const run = command(name, keys, lua);
      bound[file.name] = (...args: unknown[]) => run.call(redis, ...args);
    }
  }
  return bound as unknown as RedisScripts;
}

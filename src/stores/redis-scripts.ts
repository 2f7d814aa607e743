import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/** Reply codes of `compareAndSet-7.lua`. */
export const CasReply = { CONFLICT: 0, WRITTEN: 1, LATE: 2 } as const;

/** `{WRITTEN, wrong types}`, `{CONFLICT, stored version, raw version, raw snapshot, wrong types}` or `{LATE}`. */
export type CasReplyValue =
  | readonly [typeof CasReply.LATE]
  | readonly [typeof CasReply.WRITTEN, string?]
  | readonly [typeof CasReply.CONFLICT, number, string | null, string | null, string];

/** The store's scripts, bound to the caller's client. */
export interface RedisScripts {
  /** `compareAndSet-7.lua`: the seven keys, then its thirteen arguments. */
  compareAndSet(...keysAndArgs: (string | number)[]): Promise<CasReplyValue>;
  /** `readRecords.lua`: snapshot and version keys of each breaker; three values per breaker. */
  readRecords(...keys: string[]): Promise<(string | null)[]>;
  /** `readStamps.lua`: version, write and snapshot keys of each breaker; three values each. */
  readStamps(...keys: string[]): Promise<(string | number | null)[]>;
}

type Command = (...args: unknown[]) => Promise<unknown>;

interface ScriptFile {
  readonly name: string;
  /** Keys per call, from the file name (`name-N.lua`); `undefined`: given with each call. */
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
  scriptFile('compareAndSet-7.lua'),
  scriptFile('readRecords.lua'),
  scriptFile('readStamps.lua'),
];

// The command name carries a hash of the script, so that two copies of statebreaker (say two
// versions in one dependency tree) on one client never overwrite each other's `defineCommand`.
function commandName(file: ScriptFile): string {
  const hash = createHash('sha1').update(file.lua).digest('hex').slice(0, 10);
  return `statebreaker_${file.name}_${hash}`;
}

/** Defines the store's scripts on `redis` (once per client and script version) and binds them. */
export function defineScripts(redis: Redis | Cluster): RedisScripts {
  const commands = redis as unknown as Record<string, Command | undefined>;
  const bound: Record<string, Command> = {};
  for (const file of FILES) {
    const name = commandName(file);
    if (typeof commands[name] !== 'function') {
      redis.defineCommand(
        name,
        file.keys === undefined ? { lua: file.lua } : { numberOfKeys: file.keys, lua: file.lua },
      );
    }
    const command = commands[name] as Command;
    bound[file.name] =
      file.keys === undefined
        ? (...keys: unknown[]) => command.call(redis, keys.length, ...keys)
        : (...args: unknown[]) => command.call(redis, ...args);
  }
  return bound as unknown as RedisScripts;
}

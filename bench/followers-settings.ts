/** The command line of `bench/followers.ts`: sizes and pacing, each with a default. */

export interface FollowersSettings {
  /** Follower counts to measure (RedisStores, each with its own client and subscriber). */
  readonly followers: readonly number[];
  /** Breakers every follower follows in the runs with changes. */
  readonly breakers: number;
  /** Breakers every follower follows in the idle-only runs; 0 skips them. */
  readonly idleBreakers: number;
  /** Follower counts of the idle-only runs. */
  readonly idleFollowers: readonly number[];
  /** OS processes the followers are spread over (fewer when there are fewer followers). */
  readonly processes: number;
  /** Changes (trips and closes) in the paced burst. */
  readonly changes: number;
  /** Milliseconds between two changes of the paced burst, at least. */
  readonly gapMs: number;
  /**
   * Milliseconds between two changes per follower, when that is longer than `gapMs`: every
   * change costs each follower CPU, and on a machine of a few cores a burst paced faster than
   * the followers can read it measures their backlog rather than Redis.
   */
  readonly gapPerFollowerMs: number;
  /** Length of each idle window, in seconds. */
  readonly idleSeconds: number;
  /** How changes travel: PUBLISH on the store's one channel, or SPUBLISH on each breaker's. */
  readonly pubsub: 'classic' | 'sharded';
}

export const FOLLOWERS_DEFAULTS: FollowersSettings = {
  followers: [50, 100, 200, 400],
  breakers: 100,
  idleBreakers: 2_000,
  // 400 followers of 2,000 breakers each are 800,000 breakers: minutes of setup here.
  idleFollowers: [50, 100, 200],
  processes: 16,
  changes: 100,
  gapMs: 25,
  gapPerFollowerMs: 1,
  idleSeconds: 21,
  pubsub: 'classic',
};

/** Milliseconds between two changes of the paced burst for `followers` followers. */
export function gapFor(settings: FollowersSettings, followers: number): number {
  return Math.max(settings.gapMs, Math.ceil(followers * settings.gapPerFollowerMs));
}

/** Processes this benchmark starts at most: each takes 60-90 MB and a share of the CPUs. */
export const MAX_PROCESSES = 32;

export const FOLLOWERS_USAGE =
  'npm run bench:followers [-- --followers 50,100,200,400 (or none)] [--breakers 100] ' +
  '[--idle-breakers 2000 (0: none)] [--idle-followers 50,100,200 (or none)] ' +
  '[--processes 16] ' +
  '[--changes 100] [--gap 25 (ms, at least)] [--gap-per-follower 1 (ms)] [--idle-seconds 21] ' +
  '[--pubsub classic|sharded]';

function count(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new RangeError(
      `bench:followers: ${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function decimal(flag: string, text: string, max: number): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || value > max) {
    throw new RangeError(
      `bench:followers: ${flag} must be a number from 0 to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function counts(flag: string, text: string): number[] {
  if (text === 'none') return [];
  return text.split(',').map((part) => count(flag, part.trim(), 1, 10_000));
}

/**
 * Reads `--flag value` (or `--flag=value`) pairs over the defaults.
 * @throws RangeError naming the flag and the value that was wrong, or the unknown flag
 */
export function parseFollowersSettings(args: readonly string[]): FollowersSettings {
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (match === null) {
      throw new RangeError(`bench:followers: expected --flag value, got ${JSON.stringify(arg)}`);
    }
    const value = match[2] ?? args[++i];
    if (value === undefined) throw new RangeError(`bench:followers: --${match[1]} needs a value`);
    given.set(match[1] as string, value);
  }
  const settings: { -readonly [K in keyof FollowersSettings]: FollowersSettings[K] } = {
    ...FOLLOWERS_DEFAULTS,
  };
  for (const [flag, value] of given) {
    switch (flag) {
      case 'followers':
        settings.followers = counts('--followers', value);
        break;
      case 'breakers':
        settings.breakers = count('--breakers', value, 1, 100_000);
        break;
      case 'idle-breakers':
        settings.idleBreakers = count('--idle-breakers', value, 0, 100_000);
        break;
      case 'idle-followers':
        settings.idleFollowers = counts('--idle-followers', value);
        break;
      case 'processes':
        settings.processes = count('--processes', value, 1, MAX_PROCESSES);
        break;
      case 'changes':
        settings.changes = count('--changes', value, 2, 100_000);
        break;
      case 'gap':
        settings.gapMs = count('--gap', value, 1, 10_000);
        break;
      case 'gap-per-follower':
        settings.gapPerFollowerMs = decimal('--gap-per-follower', value, 1_000);
        break;
      case 'idle-seconds':
        settings.idleSeconds = count('--idle-seconds', value, 1, 3_600);
        break;
      case 'pubsub':
        if (value !== 'classic' && value !== 'sharded') {
          throw new RangeError(
            `bench:followers: --pubsub must be classic or sharded, got ${JSON.stringify(value)}`,
          );
        }
        settings.pubsub = value;
        break;
      default:
        throw new RangeError(`bench:followers: unknown flag --${flag}; usage: ${FOLLOWERS_USAGE}`);
    }
  }
  return settings;
}

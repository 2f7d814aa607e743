import type { RedisPort } from './port.js';

/**
 * How the store publishes change messages, as the compare-and-set script takes it (its last
 * argument):
 * - `numbered`: PUBLISH on the store's one channel, each message numbered by the change counter
 *   (standalone Redis: one GET of the counter finds a lost message);
 * - `plain`: PUBLISH on the store's one channel, unnumbered (a Cluster, where the counter cannot
 *   share a slot with every breaker, and which broadcasts the message to every node);
 * - `sharded`: SPUBLISH on the breaker's own channel, in the slot of its keys, unnumbered: on a
 *   Cluster the message travels only inside the breaker's shard, and a store hears only the
 *   breakers it follows.
 */
export type Publication = 'numbered' | 'plain' | 'sharded';

/** The `pubsub` option of a RedisStore. */
export type PubsubChoice = 'auto' | 'sharded' | 'classic';

/**
 * The publication decided without asking the server, or `null` when only the server can tell
 * (sharded pub/sub wanted: does it have SPUBLISH?).
 */
export function knownPublication(port: RedisPort, choice: PubsubChoice): Publication | null {
  const classic = port.cluster ? 'plain' : 'numbered';
  if (choice === 'classic' || (choice === 'auto' && !port.cluster)) return classic;
  return shardedClient(port) ? null : classic;
}

/**
 * The publication for `choice`, asking the server once whether it has SPUBLISH (Redis 7 or
 * later) where sharded pub/sub is wanted. Rejects only when the server could not be asked.
 */
export async function choosePublication(
  port: RedisPort,
  choice: PubsubChoice,
): Promise<Publication> {
  const known = knownPublication(port, choice);
  if (known !== null) return known;
  const classic = port.cluster ? 'plain' : 'numbered';
  try {
    const reply = await port.command(['COMMAND', 'INFO', 'SPUBLISH']);
    // Redis 6 answers [null] for a command it does not know.
    return Array.isArray(reply) && Array.isArray(reply[0]) ? 'sharded' : classic;
  } catch (error) {
    // The server answered with an error (COMMAND refused by a proxy, say): no sharded pub/sub.
    if (port.isReplyError(error)) return classic;
    throw error;
  }
}

// Whether the client can carry sharded pub/sub at all. ioredis-mock has no `call` (nor
// SPUBLISH).
function shardedClient(port: RedisPort): boolean {
  return port.rawCommands && port.shardedSubscribers;
}

/** The code of the warning {@link checkClusterMix} gives. */
export const CLASSIC_FALLBACK_WARNING_CODE = 'STATEBREAKER_CLASSIC_PUBSUB';

let warnedFallback = false;

/**
 * A Cluster client that cannot subscribe sharded channels (iovalkey 0.4, ioredis before 5.5)
 * uses classic pub/sub under `auto`, as 0.1 did, so that a fleet upgraded as it stands keeps
 * running; it warns once per process, since stores on other clients of the same fleet publish on
 * each breaker's own channel and neither would hear the other. Refused under `'sharded'`.
 * With `pubsub: 'classic'` on every store, any client may join.
 */
export function checkClusterMix(port: RedisPort, choice: PubsubChoice): void {
  if (!port.cluster || !port.rawCommands || port.shardedSubscribers || choice === 'classic') return;
  const why = `this ${port.family} Cluster client has no sharded subscribers (iovalkey 0.4, ioredis before 5.5), so it cannot follow a Cluster fleet's sharded change feed`;
  const advice = `Give pubsub: 'classic' to every store of the fleet, or use ioredis 5.5+ (Cluster with shardedSubscribers) or node-redis (createCluster).`;
  if (choice === 'sharded') {
    throw new TypeError(`RedisStore: ${why} (option pubsub "sharded"). ${advice}`);
  }
  if (warnedFallback) return;
  warnedFallback = true;
  process.emitWarning(
    `statebreaker: RedisStore: ${why}: it uses classic pub/sub, which stores on other clients with pubsub 'auto' do not hear (nor it theirs). ${advice} This warning is given once per process.`,
    { code: CLASSIC_FALLBACK_WARNING_CODE },
  );
}

import type { Cluster, Redis } from 'ioredis';

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

export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/**
 * The publication decided without asking the server, or `null` when only the server can tell
 * (sharded pub/sub wanted: does it have SPUBLISH?).
 */
export function knownPublication(redis: Redis | Cluster, choice: PubsubChoice): Publication | null {
  const classic = isCluster(redis) ? 'plain' : 'numbered';
  if (choice === 'classic' || (choice === 'auto' && !isCluster(redis))) return classic;
  return shardedClient(redis) ? null : classic;
}

/**
 * The publication for `choice`, asking the server once whether it has SPUBLISH (Redis 7 or
 * later) where sharded pub/sub is wanted. Rejects only when the server could not be asked.
 */
export async function choosePublication(
  redis: Redis | Cluster,
  choice: PubsubChoice,
): Promise<Publication> {
  const known = knownPublication(redis, choice);
  if (known !== null) return known;
  const classic = isCluster(redis) ? 'plain' : 'numbered';
  try {
    const reply = await redis.call('COMMAND', 'INFO', 'SPUBLISH');
    // Redis 6 answers [null] for a command it does not know.
    return Array.isArray(reply) && Array.isArray(reply[0]) ? 'sharded' : classic;
  } catch (error) {
    // The server answered with an error (COMMAND refused by a proxy, say): no sharded pub/sub.
    if (error instanceof Error && error.name === 'ReplyError') return classic;
    throw error;
  }
}

// Whether the client can carry sharded pub/sub at all. ioredis-mock has no `call` (nor
// SPUBLISH). An ioredis Cluster sends SSUBSCRIBE to the node of the channel's slot only with
// its `shardedSubscribers` (ioredis 5.5 or later), which then lists the option among its
// defaults.
function shardedClient(redis: Redis | Cluster): boolean {
  if (typeof (redis as { call?: unknown }).call !== 'function') return false;
  return !isCluster(redis) || Object.hasOwn(redis.options, 'shardedSubscribers');
}

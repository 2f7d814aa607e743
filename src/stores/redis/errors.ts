import { systemClock } from '../../clock.js';
import { afterDue } from '../../grace.js';
import type { RedisPort } from './port.js';

/**
 * A store call that got no answer from Redis within the store's `timeout`. The message names
 * the client and the address it connects to; `cause` is the last connection error the client
 * reported (ECONNREFUSED, ENOENT, an authentication error...), when there is one.
 */
export class RedisStoreTimeoutError extends Error {
  /** Where the store's client connects (a socket path, `host:port`, a Cluster's seeds). */
  readonly address: string | undefined;

  constructor(what: string, ms: number, port?: RedisPort) {
    const cause = port?.lastError();
    const where =
      port === undefined
        ? ''
        : ` (${port.family} at ${port.address}${cause === undefined ? '' : `: ${cause.message}`})`;
    super(
      `RedisStore: ${what} got no answer from Redis within ${ms} ms${where}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'RedisStoreTimeoutError';
    this.address = port?.address;
  }
}

/** Bounds a call to Redis by `ms`, rejecting with a {@link RedisStoreTimeoutError} past it. */
export type Bounded = <T>(promise: Promise<T>, what: string) => Promise<T>;

/** The store's bound: its `timeout`, with errors naming the port's client and address. */
export function boundedBy(port: RedisPort, ms: number): Bounded {
  return <T>(promise: Promise<T>, what: string): Promise<T> => {
    let cancel: (() => void) | undefined;
    const expired = new Promise<never>((_, reject) => {
      cancel = afterDue(systemClock, ms, () => reject(new RedisStoreTimeoutError(what, ms, port)));
    });
    return Promise.race([promise, expired]).finally(() => cancel?.());
  };
}

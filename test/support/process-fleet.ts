import { afterAll, afterEach, beforeAll } from 'vitest';
import { Upstream, type Worker } from './redis-fleet.js';

/** What a test file of OS-process fleets shares: its Redis, its upstream, each test's workers. */
export interface ProcessFleet<R> {
  /** The Redis (a server or a Cluster) the file started, once `beforeAll` ran. */
  readonly redis: R;
  /** The HTTP upstream the workers call, once `beforeAll` ran. */
  readonly upstream: Upstream;
  /** The workers of the running test, ended after it. */
  readonly workers: Worker[];
  /** What the running test opened besides, closed after it. */
  readonly closers: (() => unknown)[];
}

/**
 * Registers the hooks of a test file whose fleet runs in OS processes: `start` gives its Redis
 * before the first test and is stopped after the last, one upstream serves every test, and each
 * test's workers exit and its closers run after it.
 */
export function useProcessFleet<R extends { stop(): Promise<void> }>(
  start: () => Promise<R>,
): ProcessFleet<R> {
  let redis: R | undefined;
  let upstream: Upstream | undefined;
  const workers: Worker[] = [];
  const closers: (() => unknown)[] = [];
  beforeAll(async () => {
    redis = await start();
    upstream = new Upstream();
    await upstream.listen();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.exit()));
    for (const close of closers.splice(0)) await close();
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });
  return {
    get redis() {
      if (redis === undefined) throw new Error('the fleet has not started: use it inside a test');
      return redis;
    },
    get upstream() {
      if (upstream === undefined)
        throw new Error('the fleet has not started: use it inside a test');
      return upstream;
    },
    workers,
    closers,
  };
}

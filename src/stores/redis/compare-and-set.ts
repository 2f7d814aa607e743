import { performance } from 'node:perf_hooks';
import type { Clock } from '../../clock.js';
import type { ClockSync } from './clock-sync.js';
import { type Bounded, RedisStoreTimeoutError } from './errors.js';
import { pastFences } from './fence.js';
import type { RedisPort } from './port.js';
import { setDeadline } from './script-args.js';
import { CasReply, type CasReplyValue, type RedisScripts } from './scripts.js';

/** What a compare-and-set answers once past fences and lateness: written or a conflict. */
export type CompareAndSetReply = Exclude<
  CasReplyValue,
  readonly [typeof CasReply.LATE] | readonly [typeof CasReply.FENCED, number]
>;

/** What sending a compare-and-set needs of its store. */
export interface CompareAndSetDeps {
  readonly scripts: RedisScripts;
  readonly bounded: Bounded;
  readonly clock: Clock;
  readonly clockSync: ClockSync;
  readonly timeout: number;
  readonly port: RedisPort;
}

/**
 * Sends a compare-and-set built by `compareAndSetArgs`: past any operator's fence, with a
 * deadline on server time, and once more when the server found it late although the answer
 * came in time (this host's idea of server time was behind).
 */
export async function sendCompareAndSet(
  args: (string | number)[],
  deps: CompareAndSetDeps,
): Promise<CompareAndSetReply> {
  try {
    for (let attempt = 0; ; attempt++) {
      let sent = 0;
      // An operator's fence holds the write back until that operator's write lands.
      const reply = await pastFences(() => {
        sent = performance.now();
        setDeadline(args, deps.clock.now() + deps.timeout);
        return deps.bounded(deps.scripts.compareAndSet(...args), 'compareAndSet');
      });
      if (reply[0] !== CasReply.LATE) return reply;
      // Refused as late although the answer came in time: this host's idea of server time
      // was behind. Read the server's time and try once more.
      if (attempt > 0 || performance.now() - sent >= deps.timeout) {
        throw new RedisStoreTimeoutError('compareAndSet', deps.timeout, deps.port);
      }
      await deps.clockSync.sync(1);
    }
  } catch (error) {
    deps.clockSync.suspect();
    throw error;
  }
}

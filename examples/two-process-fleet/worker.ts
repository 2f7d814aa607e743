// One process of the fleet: what every process (pod) of your service runs. It calls an upstream
// through a breaker that all the processes share through Redis, and on SIGTERM it releases what
// it holds, its own Redis client included, so that it exits by itself.
//
//   REDIS_URL=redis://127.0.0.1:6379 UPSTREAM_URL=http://127.0.0.1:8080/ npx tsx worker.ts
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CircuitBreakerError, CircuitState, getCircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';

const who = process.env.WORKER ?? `pid ${process.pid}`;
const upstreamUrl = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8080/';
// For the demo only: this process makes its first call once the shared circuit is open, so
// that it has seen no failure of its own when it is rejected.
const firstCallWhenOpen = process.env.FIRST_CALL === 'when-open';
const log = (line: string) => console.log(`[${who}] ${line}`);

// Your own client: the store uses it and leaves it open, so ending it is yours (below).
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
redis.on('error', (error: Error) => log(`Redis: ${error.message}`));
const store = new RedisStore(redis);
// Every process builds the breaker with the same name and options: they share one statechart.
const breaker = getCircuitBreaker(process.env.BREAKER_NAME ?? 'upstream', {
  store,
  failMax: 3,
  resetTimeout: 2_000,
  successThreshold: 1,
  timeout: 10_000,
});
breaker.on('stateChange', ({ from, to, reason }) => log(`circuit ${from} → ${to} (${reason})`));

const stopping = new AbortController();
process.once('SIGTERM', () => stopping.abort());
process.once('SIGINT', () => stopping.abort());

async function callUpstream(signal: AbortSignal): Promise<string> {
  const response = await fetch(upstreamUrl, { signal });
  const text = await response.text();
  if (!response.ok) throw new Error(`the upstream answered ${response.status} ${text}`);
  return text;
}

let lastLine = '';
/** Logs an outcome unless it repeats the previous one, so that the log stays short. */
function report(line: string): void {
  if (line !== lastLine) log(line);
  lastLine = line;
}

// Reads the shared record first: a process that starts now knows what the fleet decided.
await breaker.settled();
log(`ready: the shared circuit is ${breaker.state}`);
if (firstCallWhenOpen && breaker.state !== CircuitState.OPEN) {
  await new Promise<void>((resolve) => {
    const off = breaker.on('stateChange', ({ to }) => {
      if (to !== CircuitState.OPEN) return;
      off();
      resolve();
    });
  });
}

let failures = 0;
while (!stopping.signal.aborted) {
  let probe = false;
  try {
    await breaker.call((signal) => {
      // Admitted while half-open: this call is the fleet's one probe.
      probe = breaker.state === CircuitState.HALF_OPEN;
      return callUpstream(signal);
    });
    report(probe ? 'probe: the upstream answered' : 'called: the upstream answered');
  } catch (error) {
    if (error instanceof CircuitBreakerError) {
      report(`rejected at once (the circuit is ${error.state}): the upstream not called`);
    } else {
      failures++;
      const message = error instanceof Error ? error.message : String(error);
      report(`${probe ? 'probe' : 'called'}: failed (${message}), failure #${failures} here`);
    }
  }
  await sleep(200, undefined, { signal: stopping.signal }).catch(() => undefined);
}

// SIGTERM (a deploy, a scale-down): stop following the shared record, close the store's own
// connection, then end your client. Nothing is left to keep the process alive: no process.exit.
breaker.dispose();
await store.close();
// QUIT waits for Redis's answer, which never comes while Redis is frozen or away (ioredis queues
// it behind the commands sent meanwhile): after a second, drop the connection instead.
const drop = setTimeout(() => redis.disconnect(), 1_000);
await redis.quit().catch(() => redis.disconnect());
clearTimeout(drop);
log('stopped on SIGTERM: the breaker disposed, the store closed, the Redis client ended');

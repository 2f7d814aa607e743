import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StormReport } from './fixtures/storm-worker.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';
import { StormUpstream, StormWorker, stateKey } from './support/storm-fleet.js';

// An outage storm: 8 OS processes, each with its own client and RedisStore, 20 callers each,
// one breaker name, an HTTP upstream in this process that fails for a few seconds and then
// recovers. Every check is a count (events, calls in flight at the upstream, states), never a
// duration.
//
// The probe bound is counted at the upstream: each request carries its caller's breaker state
// and generation when the call started (a call started half-open is a probe). A half-open
// round is one generation's probes; over the span from its first probe's arrival to its last
// probe's answer, the upstream counts the probes, and the calls of any kind, in flight at once.

const NAME = 'storm';
const PROCESSES = 8;
const CALLERS = 20;
const REJECTED_PAUSE_MS = 5;
/** How long the upstream takes to answer, healthy or failing. */
const UPSTREAM_DELAY_MS = 10;
const OUTAGE_MS = 3_000;
/**
 * The outage lasts at least `OUTAGE_MS` and until a probe has failed, at most this long: on a
 * loaded machine the fleet may trip late, and the checks need a half-open round of the outage.
 */
const OUTAGE_BOUND_MS = 20_000;
/**
 * The stores' timeout: generous, since "never degrades" is about the storm (Redis never fails),
 * and a loaded machine may keep Redis from answering within the default 500 ms.
 */
const STORE_TIMEOUT_MS = 5_000;
const BREAKER = {
  failMax: 5,
  resetTimeout: 400,
  halfOpenMaxCalls: 1,
  successThreshold: 2,
  // Bounds every call; the probe lease (timeout + 1 s) then outlives any probe, so a probe
  // still in flight never overlaps the next round's.
  timeout: 2_000,
};
/** Healthy calls each process makes before the outage: every caller has called. */
const WARM_UP_CALLS = CALLERS;

let server: RedisServer;
let admin: Redis;
let upstream: StormUpstream;
const fleet: StormWorker[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
  upstream = new StormUpstream();
  upstream.delayMs = UPSTREAM_DELAY_MS;
  await upstream.listen();
});

afterAll(async () => {
  await Promise.all(fleet.splice(0).map((worker) => worker.exit()));
  admin?.disconnect();
  await upstream?.close();
  await server?.stop();
});

/** State changes of a process to an earlier generation than its previous one. */
function stepsBack(worker: StormWorker): number {
  return worker.states.filter(
    (s, j) => j > 0 && s.generation < (worker.states[j - 1]?.generation ?? 0),
  ).length;
}

function summary(
  workers: readonly StormWorker[],
  reports: readonly (StormReport | null)[],
  stored: string | null,
): string {
  const lines = workers.map((worker, i) => {
    const report = reports[i];
    if (report === null || report === undefined) {
      return `  #${i} pid ${worker.pid}: no report (last state seen ${worker.state})`;
    }
    const c = report.counts;
    const errors = Object.entries(c.storeErrors)
      .map(([name, n]) => `${name}×${n}`)
      .join(' ');
    // The process's transitions in order, as `to@generation(reason)`, then how often it
    // went back to an earlier generation (a local change the fleet's record replaced).
    const path = worker.states.map((s) => `${s.to}@${s.generation}(${s.reason})`);
    const backwards = stepsBack(worker);
    const shown = path.length > 16 ? [...path.slice(0, 16), `… ${path.length - 16} more`] : path;
    return (
      `  #${i} pid ${worker.pid}: state ${report.state}${report.state === stored ? '' : ' (≠ Redis)'}` +
      `${report.settled ? '' : ' (writes unsettled)'}, gen ${report.generation}; ` +
      `degraded ${c.degraded}, recovered ${c.recovered}, storeErrors ${errors || 0}; ` +
      `calls ${c.calls}, admitted ${c.admitted}, probes ${c.probes}, ok ${c.succeeded}, ` +
      `failed ${c.failed}, rejected ${c.rejected}; ${c.stateChanges} state changes, ` +
      `${backwards} to an earlier generation: ${shown.join(' ')}`
    );
  });
  return [`Redis ${stateKey(NAME)} = ${stored}`, ...lines].join('\n');
}

describe('an outage storm: 8 processes × 20 callers on one breaker', () => {
  it('never degrades, probes at most halfOpenMaxCalls at once at the upstream, and ends closed in agreement with Redis', async () => {
    for (let i = 0; i < PROCESSES; i++) {
      fleet.push(
        new StormWorker({
          socket: server.path,
          name: NAME,
          upstream: upstream.url,
          breaker: BREAKER,
          storeTimeout: STORE_TIMEOUT_MS,
        }),
      );
    }
    expect(
      await waitFor(() => fleet.every((w) => w.ready), 20_000),
      'every worker process started and read the shared record',
    ).toBe(true);

    // Healthy traffic first: every caller of every process gets through once.
    upstream.healthy = true;
    for (const worker of fleet) worker.start(CALLERS, REJECTED_PAUSE_MS);
    expect(
      await waitFor(
        () => fleet.every((w) => upstream.healthyAnswersTo(w.pid) >= WARM_UP_CALLS),
        10_000,
      ),
      'every process called the healthy upstream',
    ).toBe(true);

    // The outage.
    const outageFrom = upstream.calls.length;
    upstream.healthy = false;
    const outageStart = Date.now();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    await waitFor(
      () =>
        upstream.calls.some(
          (c, i) => i >= outageFrom && c.state === 'halfOpen' && c.status === 500,
        ),
      OUTAGE_BOUND_MS,
    );
    upstream.healthy = true;
    const outageMs = Date.now() - outageStart;

    // Recovery: probes succeed and the fleet closes; every caller gets through once more;
    // then the callers stop.
    await waitFor(() => fleet.every((w) => w.state === 'closed'), 20_000);
    const healthyBefore = fleet.map((w) => upstream.healthyAnswersTo(w.pid));
    await waitFor(
      () =>
        fleet.every(
          (w, i) => upstream.healthyAnswersTo(w.pid) - (healthyBefore[i] ?? 0) >= CALLERS,
        ),
      5_000,
    );
    const stopped = await Promise.all(fleet.map((w) => w.stop()));
    const reports = await Promise.all(fleet.map((w) => w.fetchReport()));
    const stored = await admin.get(stateKey(NAME));
    const report = summary(fleet, reports, stored);

    const rounds = upstream.halfOpenRounds(outageFrom);
    const outageRounds = rounds.filter((r) => r.failed);
    const roundLines = rounds.map(
      (r) =>
        `  gen ${r.generation} (${r.failed ? 'failed' : 'recovered'}): ${r.probes} probe(s), ` +
        `at most ${r.maxProbesInFlight} probe(s) and ${r.maxCallsInFlight} call(s) in flight` +
        (r.unaware === 0
          ? ''
          : ` (not counting ${r.unaware} admitted while closed before the trip)`) +
        (Object.keys(r.others).length === 0
          ? ''
          : `; other calls in flight meanwhile (pid:state@generation×n): ${Object.entries(r.others)
              .map(([k, n]) => `${k}×${n}`)
              .join(' ')}`),
    );
    const maxProbes = Math.max(0, ...rounds.map((r) => r.maxProbesInFlight));
    const maxCalls = Math.max(0, ...rounds.map((r) => r.maxCallsInFlight));
    const degraded = reports.map((r) => r?.counts.degraded ?? Number.NaN);
    const disagreeing = reports.filter((r) => r?.state !== stored).length;
    const notClosed = reports.filter((r) => r?.state !== 'closed').length;
    const failedUpstream = upstream.calls.filter((c) => c.status === 500).length;
    const back = fleet.map(stepsBack);
    console.log(
      `storm: ${PROCESSES} processes × ${CALLERS} callers, outage ${outageMs} ms; ` +
        `${failedUpstream} calls answered 500 by the failing upstream; ${rounds.length} half-open ` +
        `round(s) (${outageRounds.length} during the outage); at most ${maxProbes} probe(s) and ` +
        `${maxCalls} call(s) in flight at the upstream during a round (halfOpenMaxCalls ` +
        `${BREAKER.halfOpenMaxCalls}); degraded per process [${degraded.join(', ')}]; state ` +
        `changes back to an earlier generation per process [${back.join(', ')}]; ` +
        `${disagreeing} process(es) disagree with Redis at the end, ${notClosed} not closed`,
    );

    const detail = (what: string) => `${what}\n${report}\n${roundLines.join('\n')}`;
    expect(stopped.every(Boolean), detail('every call in flight settled')).toBe(true);
    expect(upstream.dropped, 'the upstream logged every call').toBe(0);
    expect(
      outageRounds.length,
      detail('at least one half-open round during the outage'),
    ).toBeGreaterThan(0);
    expect(degraded, detail('degraded events per process (none: Redis never failed)')).toEqual(
      fleet.map(() => 0),
    );
    expect(
      maxProbes,
      detail(
        `probes in flight at once at the upstream ≤ halfOpenMaxCalls ${BREAKER.halfOpenMaxCalls}`,
      ),
    ).toBeLessThanOrEqual(BREAKER.halfOpenMaxCalls);
    expect(
      maxCalls,
      detail(
        `calls of any kind arriving at the upstream during a half-open round, in flight at once (but calls admitted while closed before the trip), ≤ ${BREAKER.halfOpenMaxCalls}`,
      ),
    ).toBeLessThanOrEqual(BREAKER.halfOpenMaxCalls);
    // Steps back are printed above, not failed on: a trip this instance made on its own count is
    // heard at once, and when another instance's newer record shows the streak was reset (a
    // success elsewhere), it is undone (open → closed 'init' → open on the next failures). The
    // limits in docs/fleet.md say so; a flap within one adoption is guarded in fleet-regressions-feed.
    expect(notClosed, detail('processes not closed at the end')).toBe(0);
    expect(stored, detail('the state stored in Redis at the end')).toBe('closed');
    expect(disagreeing, detail('processes whose state differs from Redis at the end')).toBe(0);
    // Every wait above is bounded; their sum exceeds vitest's default test timeout.
  }, 120_000);
});

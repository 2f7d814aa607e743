import { breakerMachine, CircuitBreaker, CircuitBreakerError, MemoryStore } from 'statebreaker';
import { forceOpen, readBreaker, reset } from 'statebreaker/admin';
import { type Dashboard, startDashboard } from 'statebreaker/dashboard';
import type { BreakerStore } from 'statebreaker/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagramStates } from '../src/dashboard/diagram.js';
import { listen, send } from './support/http-client.js';
import { waitFor } from './support/redis-wait.js';

// The dashboard's HTTP side on an embedded store: what it serves, how it refuses, and the live
// stream. The page itself runs in a real browser in dashboard.test.ts.

const TOKEN = 'test-token-0123456789abcdef';
const store = new MemoryStore();
const breakers: CircuitBreaker[] = [];
let readOnly: Dashboard;
let operated: Dashboard;
const cleanupPage: { close(): void }[] = [];

function breaker(name: string, failMax = 3): CircuitBreaker {
  const made = new CircuitBreaker(name, { store, failMax, resetTimeout: 60_000 });
  breakers.push(made);
  return made;
}

async function fail(target: CircuitBreaker, times = 1): Promise<void> {
  for (let i = 0; i < times; i++) {
    await target.call(() => Promise.reject(new Error('down'))).catch(() => undefined);
  }
  await target.settled();
}

/** The headers the dashboard's own page sends with a write. */
function ownPage(dashboard: Dashboard, token = TOKEN): Record<string, string> {
  const { host } = new URL(dashboard.url);
  return {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Origin: `http://${host}`,
    'Sec-Fetch-Site': 'same-origin',
  };
}

function write(
  dashboard: Dashboard,
  action: string,
  name: string,
  headers: Record<string, string>,
) {
  return send(`${dashboard.url}api/actions/${action}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name }),
  });
}

beforeAll(async () => {
  readOnly = await startDashboard({ store, port: 0 });
  operated = await startDashboard({ store, port: 0, token: TOKEN });
});

afterAll(async () => {
  for (const page of cleanupPage) page.close();
  for (const made of breakers) made.dispose();
  await readOnly?.close();
  await operated?.close();
});

describe('options', () => {
  it.each([
    [{ store: {} }, TypeError, /startDashboard: store must be a breaker store/],
    [{ store, host: '' }, RangeError, /option host must not be empty/],
    [{ store, host: 8080 }, TypeError, /option host must be a string, got 8080/],
    [
      { store, port: 70_000 },
      RangeError,
      /option port must be an integer from 0 to 65535, got 70000/,
    ],
    [{ store, port: 1.5 }, RangeError, /option port .* got 1.5/],
    [{ store, port: '80' }, TypeError, /option port must be a number, got "80"/],
    [{ store, token: '' }, RangeError, /option token must not be empty/],
    [{ store, token: 'two words' }, RangeError, /option token must be visible ASCII/],
    [
      { store, token: 'short-token' },
      RangeError,
      /option token must be at least 16 characters.*got 11/,
    ],
    [{ store, token: 42 }, TypeError, /option token must be a string, got 42/],
    [{ store, tokn: 'x' }, TypeError, /unknown option "tokn"/],
  ])('refuses %o', async (options, type, message) => {
    const started = startDashboard(options as never);
    await expect(started).rejects.toThrow(type);
    await expect(started).rejects.toThrow(message);
  });

  it('never repeats a refused token in its message', async () => {
    await expect(startDashboard({ store, token: 'secret with space' })).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret') }),
    );
  });

  it('refuses a store that cannot list and follow every breaker', async () => {
    const limited: BreakerStore = {
      clock: store.clock,
      load: (name) => store.load(name),
      compareAndSet: (...args) => store.compareAndSet(...args),
      subscribe: (...args) => store.subscribe(...args),
    };
    await expect(startDashboard({ store: limited, port: 0 })).rejects.toThrow(
      /listRecords and watchAll/,
    );
  });

  it('names the address it cannot listen on', async () => {
    const { port } = new URL(readOnly.url);
    await expect(startDashboard({ store, port: Number(port) })).rejects.toThrow(
      `startDashboard: cannot listen on 127.0.0.1:${port}`,
    );
  });

  it('listens on loopback unless told otherwise', () => {
    expect(new URL(readOnly.url).hostname).toBe('127.0.0.1');
    expect(readOnly.writable).toBe(false);
    expect(operated.writable).toBe(true);
  });
});

describe('what it serves', () => {
  it('the page with its own script and style only, the statechart drawn from the machine', async () => {
    const page = await send(readOnly.url);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    // Every state of the statechart, by its path, and nothing fetched from elsewhere.
    const states = diagramStates(breakerMachine);
    expect(states).toEqual(expect.arrayContaining(['closed', 'open', 'halfOpen.probing']));
    for (const state of states) expect(page.text).toContain(`data-state="${state}"`);
    expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const asset of ['assets/dashboard.js', 'assets/dashboard.css', 'assets/actions.js']) {
      // The page names its own files; the script imports the actions' module.
      if (asset !== 'assets/actions.js') expect(page.text).toContain(asset);
      const file = await send(`${readOnly.url}${asset}`);
      expect(file.status).toBe(200);
      expect(file.text.length).toBeGreaterThan(500);
    }
  });

  it('the breakers as JSON, and one breaker with a 404 naming it when there is none', async () => {
    const tripped = breaker('json tripped', 1);
    await fail(tripped);
    const listing = (await send(`${readOnly.url}api/breakers`)).json() as {
      now: number;
      writable: boolean;
      breakers: {
        name: string;
        state: string;
        openedAt: number;
        config: { resetTimeout: number };
      }[];
    };
    expect(listing.writable).toBe(false);
    expect(listing.now).toBeGreaterThan(0);
    expect(listing.breakers.find((b) => b.name === 'json tripped')).toMatchObject({
      state: 'open',
      config: { resetTimeout: 60_000 },
    });

    const one = await send(`${readOnly.url}api/breaker?name=${encodeURIComponent('json tripped')}`);
    expect(one.json()).toMatchObject({ breaker: { name: 'json tripped', state: 'open' } });
    const missing = await send(`${readOnly.url}api/breaker?name=${encodeURIComponent('no such')}`);
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({
      error: expect.stringContaining('no breaker named "no such"'),
    });
    expect((await send(`${readOnly.url}api/breaker`)).status).toBe(400);
    expect((await send(`${readOnly.url}nothing`)).status).toBe(404);
  });

  it('writes no limit (failMax: Infinity) as "Infinity", in the listing and the stream', async () => {
    const rateOnly = new CircuitBreaker('json rate only', {
      store,
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 50,
      minimumCalls: 2,
    });
    breakers.push(rateOnly);
    const page = listen(`${readOnly.url}events`);
    expect(await waitFor(() => page.events.length > 0, 5_000)).toBe(true);
    // Its record is written at its first change: a trip on the rate.
    await fail(rateOnly, 2);
    expect(await waitFor(() => rateOnly.state === 'open', 5_000)).toBe(true);
    await rateOnly.settled();
    const listing = (await send(`${readOnly.url}api/breakers`)).json() as {
      breakers: { name: string; config: { failMax: unknown } }[];
    };
    expect(listing.breakers.find((b) => b.name === 'json rate only')?.config.failMax).toBe(
      'Infinity',
    );
    const one = await send(
      `${readOnly.url}api/breaker?name=${encodeURIComponent('json rate only')}`,
    );
    expect(
      (one.json() as { breaker: { config: { failMax: unknown } } }).breaker.config.failMax,
    ).toBe('Infinity');
    const streamed = () =>
      page.events.flatMap((e) =>
        e.type === 'breaker' ? [(e.data as { breaker: { name: string } }).breaker] : [],
      );
    expect(await waitFor(() => streamed().some((b) => b.name === 'json rate only'), 5_000)).toBe(
      true,
    );
    expect(streamed().find((b) => b.name === 'json rate only')).toMatchObject({
      config: { failMax: 'Infinity' },
    });
    page.close();
  });

  it("streams the fleet's failure and slow-call rates of a breaker with a rate rule, -1 below minimumCalls", async () => {
    const name = 'json rated';
    const config = {
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 75,
      slowCallRateThreshold: 90,
      slowCallDuration: 60_000,
      minimumCalls: 4,
      window: 60_000,
    };
    // A closed record under the rate rules: created by an operator, then reset.
    await forceOpen(store, name, { create: config });
    await reset(store, name);
    const rated = new CircuitBreaker(name, { store, ...config, windowFlush: 20 });
    breakers.push(rated);
    await rated.settled();
    const page = listen(`${readOnly.url}events`);
    cleanupPage.push(page);
    type Rates = { calls: number; failureRate: number; slowCallRate: number } | null;
    const rates = () =>
      page.events.flatMap((e) => {
        const breaker = (e.data as { breaker?: { name: string; rates: Rates } }).breaker;
        return e.type === 'breaker' && breaker?.name === name ? [breaker.rates] : [];
      });

    await rated.call(async () => 'ok');
    await fail(rated);
    expect(await waitFor(() => rates().some((r) => r?.calls === 2), 5_000)).toBe(true);
    expect(rates().find((r) => r?.calls === 2)).toEqual({
      calls: 2,
      minimumCalls: 4,
      failureRate: -1,
      slowCallRate: -1,
    });
    await rated.call(async () => 'ok');
    await fail(rated);
    expect(await waitFor(() => rates().some((r) => r?.calls === 4), 5_000)).toBe(true);
    expect(rates().find((r) => r?.calls === 4)).toEqual({
      calls: 4,
      minimumCalls: 4,
      failureRate: 50,
      slowCallRate: 0,
    });
    expect(rated.state).toBe('closed');
    const one = await send(`${readOnly.url}api/breaker?name=${encodeURIComponent(name)}`);
    expect((one.json() as { breaker: { rates: Rates } }).breaker.rates).toMatchObject({
      calls: 4,
      failureRate: 50,
    });
    // Reading the window adds nothing to it.
    const again = await send(`${readOnly.url}api/breaker?name=${encodeURIComponent(name)}`);
    expect((again.json() as { breaker: { rates: Rates } }).breaker.rates).toMatchObject({
      calls: 4,
    });
    // Each open page counts toward the dashboard's limit.
    page.close();
  });

  it('answers only to loopback names while it listens on loopback (no DNS rebinding)', async () => {
    const rebound = await send(readOnly.url, { headers: { Host: 'attacker.example:8080' } });
    expect(rebound.status).toBe(403);
    expect(rebound.json()).toEqual({ error: expect.stringContaining('not a loopback name') });
    const local = await send(readOnly.url, { headers: { Host: 'localhost:9999' } });
    expect(local.status).toBe(200);
  });

  it('serves at most 64 live pages at once, and another once one leaves', async () => {
    const pages = Array.from({ length: 64 }, () => listen(`${readOnly.url}events`));
    try {
      expect(await waitFor(() => pages.every((page) => page.events.length > 0))).toBe(true);
      const refused = await send(`${readOnly.url}events`);
      expect(refused.status).toBe(503);
      expect(refused.json()).toEqual({ error: expect.stringContaining('at most 64 pages') });
      pages.pop()?.close();
      // The server hears the page leave a moment later: a page may be refused until then.
      const joined = async () => {
        const next = listen(`${readOnly.url}events`);
        pages.push(next);
        return waitFor(() => next.events.length > 0, 100);
      };
      expect(await waitFor(joined)).toBe(true);
    } finally {
      for (const page of pages) page.close();
    }
  });

  it('streams a snapshot, then every change with the store clock', async () => {
    const stream = listen(`${readOnly.url}events`);
    try {
      expect(await waitFor(() => stream.events.length > 0)).toBe(true);
      expect(stream.events[0]).toMatchObject({ type: 'snapshot', data: { writable: false } });
      const live = breaker('streamed', 2);
      await fail(live, 2);
      const heard = () => stream.events.filter((e) => JSON.stringify(e.data).includes('streamed'));
      expect(await waitFor(() => heard().some((e) => e.type === 'transition'))).toBe(true);
      expect(heard().map((e) => e.type)).toEqual(['breaker', 'breaker', 'transition']);
      expect(heard()[0]?.data).toMatchObject({
        now: expect.any(Number),
        breaker: { name: 'streamed', state: 'closed', failures: 1 },
      });
      expect(heard()[2]?.data).toMatchObject({
        name: 'streamed',
        transition: { from: 'closed', to: 'open', reason: 'failMaxReached' },
      });
    } finally {
      stream.close();
    }
  });
});

describe('writes', () => {
  it('a read-only dashboard refuses every write, token or not, and nothing changes', async () => {
    const target = breaker('read-only target');
    await fail(target);
    const before = await readBreaker(store, 'read-only target');
    for (const headers of [ownPage(readOnly), ownPage(readOnly, 'guess')]) {
      const refused = await write(readOnly, 'forceOpen', 'read-only target', headers);
      expect(refused.status).toBe(403);
      expect(refused.json()).toEqual({ error: expect.stringContaining('read-only') });
    }
    expect((await send(`${readOnly.url}api/auth`, { method: 'POST' })).status).toBe(403);
    expect((await readBreaker(store, 'read-only target')).version).toBe(before.version);
    expect(target.state).toBe('closed');
  });

  it('refuses a write without the token, with a wrong one, or with it in the URL', async () => {
    const target = breaker('guarded');
    await fail(target);
    const before = await readBreaker(store, 'guarded');
    const { Authorization: _, ...noToken } = ownPage(operated);
    const attempts = [
      noToken,
      ownPage(operated, 'wrong'),
      ownPage(operated, `${TOKEN}x`),
      { ...noToken, Authorization: TOKEN },
    ];
    for (const headers of attempts) {
      const refused = await write(operated, 'forceOpen', 'guarded', headers);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    const inUrl = await send(`${operated.url}api/actions/forceOpen?token=${TOKEN}`, {
      method: 'POST',
      headers: noToken,
      body: JSON.stringify({ name: 'guarded' }),
    });
    expect(inUrl.status).toBe(401);
    expect((await readBreaker(store, 'guarded')).version).toBe(before.version);
  });

  it('refuses a write from another site even with the token (no cross-site request forgery)', async () => {
    const target = breaker('cross-site');
    await fail(target);
    const before = await readBreaker(store, 'cross-site');
    const forged = [
      { ...ownPage(operated), Origin: 'http://attacker.example' },
      { ...ownPage(operated), Origin: 'null' },
      { ...ownPage(operated), 'Sec-Fetch-Site': 'cross-site' },
    ];
    for (const headers of forged) {
      const refused = await write(operated, 'forceOpen', 'cross-site', headers);
      expect(refused.status).toBe(403);
      expect(refused.json()).toEqual({ error: expect.stringContaining('cross-origin') });
    }
    expect((await readBreaker(store, 'cross-site')).version).toBe(before.version);
  });

  it('clear 4xx answers for bad writes', async () => {
    const headers = ownPage(operated);
    const getAction = await send(`${operated.url}api/actions/forceOpen`);
    expect(getAction.status).toBe(405);
    expect(getAction.headers.allow).toBe('POST');
    const unknown = await write(operated, 'explode', 'x', headers);
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({ error: expect.stringContaining('no operator action') });
    const missing = await write(operated, 'forceOpen', 'never seen', headers);
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ error: expect.stringContaining('no breaker named') });
    const plain = await write(operated, 'forceOpen', 'x', {
      ...headers,
      'Content-Type': 'text/plain',
    });
    expect(plain.status).toBe(415);
    const notJson = await send(`${operated.url}api/actions/reset`, {
      method: 'POST',
      headers,
      body: '{"name": ',
    });
    expect(notJson.status).toBe(400);
    const noName = await send(`${operated.url}api/actions/reset`, {
      method: 'POST',
      headers,
      body: '{"breaker": "x"}',
    });
    expect(noName.status).toBe(400);
    expect(noName.json()).toEqual({ error: expect.stringContaining('"name"') });
  });

  it('lists a corrupt record as such; only a reset may replace it', async () => {
    const written = await store.compareAndSet('garbled', 0, {
      version: 1,
      snapshot: { status: 'active', value: 'nowhere', context: {} } as never,
    });
    expect(written.ok).toBe(true);
    const listing = (await send(`${operated.url}api/breakers`)).json() as {
      breakers: { name: string; corrupt: boolean; problem?: string }[];
    };
    expect(listing.breakers.find((b) => b.name === 'garbled')).toMatchObject({
      corrupt: true,
      problem: expect.any(String),
    });
    const refused = await write(operated, 'forceOpen', 'garbled', ownPage(operated));
    expect(refused.status).toBe(409);
    expect(refused.json()).toEqual({ error: expect.stringContaining('only a reset replaces') });
    expect((await send(`${operated.url}api/breaker?name=garbled`)).status).toBe(409);
  });

  it('with the token from its own page: force open reaches a running breaker, reset closes it', async () => {
    const running = breaker('operated', 5);
    await fail(running);
    expect(
      (await send(`${operated.url}api/auth`, { method: 'POST', headers: ownPage(operated) }))
        .status,
    ).toBe(204);

    const opened = await write(operated, 'forceOpen', 'operated', ownPage(operated));
    expect(opened.status).toBe(200);
    expect(opened.json()).toMatchObject({
      action: 'forceOpen',
      from: 'closed',
      changed: true,
      breaker: { state: 'forcedOpen' },
    });
    await expect(running.call(async () => 'through')).rejects.toThrow(CircuitBreakerError);

    // A client that is not a browser sends no Origin: the token alone lets it through.
    const { Origin: _o, 'Sec-Fetch-Site': _s, ...curl } = ownPage(operated);
    const closed = await write(operated, 'reset', 'operated', curl);
    expect(closed.json()).toMatchObject({ from: 'forcedOpen', breaker: { state: 'closed' } });
    expect(await running.call(async () => 'through')).toBe('through');
  });
});

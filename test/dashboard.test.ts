import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CircuitBreaker } from 'statebreaker';
import { forceOpen, readBreaker, reset } from 'statebreaker/admin';
import { type Dashboard, startDashboard } from 'statebreaker/dashboard';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Upstream, Worker } from './support/redis-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The dashboard in a real browser (Debian's chromium driven by playwright-core), on a real
// redis-server, with breakers running in other processes: the page follows them live, and an
// operator's click reaches them.

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  console.warn(
    `dashboard browser test skipped: ${CHROMIUM} is missing (Debian: apt-get install chromium)`,
  );
}

const TOKEN = 'dashboard-test-token-5f0c2a9e';
// Generous bounds for things to happen at all; they measure nothing.
const BOUND_MS = 15_000;
const XSS_NAME = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

let server: RedisServer;
let upstream: Upstream;
let browser: Browser;
let operated: Dashboard;
let readOnly: Dashboard;
let xssBreaker: CircuitBreaker;
const workers: Worker[] = [];
const rated: CircuitBreaker[] = [];
const clients: Redis[] = [];
const stores: RedisStore[] = [];

function redisStore(): RedisStore {
  const redis = new Redis({ path: server.path });
  clients.push(redis);
  const store = new RedisStore(redis);
  stores.push(store);
  return store;
}

function worker(name: string, breaker: Record<string, number>): Worker {
  const made = new Worker({
    redis: { socket: server.path },
    names: [name],
    upstream: upstream.url,
    breaker,
  });
  workers.push(made);
  return made;
}

/** One call in the worker process; resolves with how it ended. */
async function callIn(target: Worker): Promise<string> {
  const before = target.results.length;
  target.send({ type: 'call' });
  expect(await waitFor(() => target.results.length > before, BOUND_MS)).toBe(true);
  return target.results[before]?.outcome as string;
}

function tile(page: Page, name: string) {
  return page.locator('.tile').filter({ has: page.getByRole('heading', { name, exact: true }) });
}

async function tileState(page: Page, name: string, state: string): Promise<void> {
  await tile(page, name)
    .and(page.locator(`[data-state="${state}"]`))
    .waitFor({ timeout: BOUND_MS });
}

async function openPage(dashboard: Dashboard): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(dashboard.url);
  await page.locator('#live[data-status="live"]').waitFor({ timeout: BOUND_MS });
  return page;
}

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  server = await RedisServer.start();
  upstream = new Upstream();
  await upstream.listen();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  operated = await startDashboard({ store: redisStore(), port: 0, token: TOKEN });
  readOnly = await startDashboard({ store: redisStore(), port: 0 });
  // A breaker whose name is markup, with a record (one failure counted).
  xssBreaker = new CircuitBreaker(XSS_NAME, { store: redisStore(), failMax: 5 });
  await xssBreaker.call(() => Promise.reject(new Error('down'))).catch(() => undefined);
  await xssBreaker.settled();
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.exit()));
  xssBreaker?.dispose();
  for (const breaker of rated) breaker.dispose();
  await operated?.close();
  await readOnly?.close();
  await browser?.close();
  for (const store of stores) await store.close();
  for (const redis of clients) redis.disconnect();
  await upstream?.close();
  await server?.stop();
}, 60_000);

describe.skipIf(!HAVE_CHROMIUM)('the dashboard in a real browser', () => {
  it('shows a breaker that another process trips, within 1 s, without a reload', async () => {
    const name = 'payments api';
    const page = await openPage(operated);
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    // Notes, on this machine's clock, when the tile first shows the breaker open.
    await page.evaluate((watched) => {
      const seen = window as unknown as { shownOpenAt?: number };
      new MutationObserver(() => {
        for (const tile of Array.from(document.querySelectorAll<HTMLElement>('.tile'))) {
          const shown = tile.querySelector('.name')?.textContent === watched;
          if (shown && tile.dataset.state === 'open') seen.shownOpenAt ??= Date.now();
        }
      }).observe(document.getElementById('tiles') as HTMLElement, {
        subtree: true,
        childList: true,
        attributes: true,
      });
    }, name);

    const member = worker(name, { failMax: 1, resetTimeout: 60_000 });
    expect(await waitFor(() => member.ready, BOUND_MS)).toBe(true);
    upstream.mode = 'fail';
    expect(await callIn(member)).toBe('failed');
    expect(await waitFor(() => member.state === 'open', BOUND_MS)).toBe(true);
    await tileState(page, name, 'open');

    // openedAt is Redis server time, on this same machine's clock as the page's Date.now().
    const openedAt = member.states.find((s) => s.to === 'open')?.openedAt as number;
    const shownAt = await page.evaluate(() => (window as { shownOpenAt?: number }).shownOpenAt);
    const lag = (shownAt as number) - openedAt;
    // Printed, not asserted: tests do not assert on timing.
    console.log(`dashboard: the trip showed on the page ${lag} ms after it happened`);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(navigations).toBe(0);

    const shown = tile(page, name);
    await expect(shown.locator('.badge').textContent()).resolves.toBe('open');
    await expect(shown.locator('g.state.on').getAttribute('data-state')).resolves.toBe('open');
    const countdown = (await shown.locator('.countdown-text').textContent()) as string;
    const seconds = Number(/half-open in (\d+) s/.exec(countdown)?.[1]);
    expect(seconds).toBeGreaterThan(40);
    expect(seconds).toBeLessThanOrEqual(60);
    await expect(shown.locator('.history li').first().textContent()).resolves.toMatch(
      /closed → open failMaxReached/,
    );
    await page.close();
  });

  it('with the token, clicking Force open makes a running fleet member reject its next call', async () => {
    const name = 'checkout api';
    const member = worker(name, { failMax: 5, resetTimeout: 60_000 });
    expect(await waitFor(() => member.ready, BOUND_MS)).toBe(true);
    upstream.mode = 'fail';
    expect(await callIn(member)).toBe('failed');
    upstream.mode = 'ok';
    expect(await callIn(member)).toBe('succeeded');

    const page = await openPage(operated);
    const shown = tile(page, name);
    await shown.waitFor({ timeout: BOUND_MS });
    // Locked until the operator gives the token: no button yet, nor with a wrong one.
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await page.locator('#token').fill(`${TOKEN}-wrong`);
    await page.locator('#unlock button[type="submit"]').click();
    await page.locator('#notice', { hasText: 'refused' }).waitFor({ timeout: BOUND_MS });
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await page.locator('#token').fill(TOKEN);
    await page.locator('#unlock button[type="submit"]').click();
    await page.locator('#mode[data-mode="operator"]').waitFor({ timeout: BOUND_MS });

    // A fleet-wide action asks first: a click alone changes nothing, Cancel leaves it so.
    const before = await readBreaker(stores[0] as RedisStore, name);
    await shown.locator('button[data-action="disable"]').click();
    await expect(shown.locator('.confirm-text').textContent()).resolves.toBe(
      `Disable "${name}" for the whole fleet? Every call goes through and nothing is counted until a reset.`,
    );
    await shown.locator('button.cancel').click();
    await shown.locator('button[data-action="disable"]').waitFor({ timeout: BOUND_MS });
    await shown.locator('button[data-action="forceOpen"]').click();
    await shown.locator('button[data-confirm="forceOpen"]').waitFor({ timeout: BOUND_MS });
    expect(await shown.locator('button[data-action]').count()).toBe(0);
    expect((await readBreaker(stores[0] as RedisStore, name)).version).toBe(before.version);
    expect(member.state).toBe('closed');
    await shown.locator('button[data-confirm="forceOpen"]').click();
    await tileState(page, name, 'forcedOpen');
    expect(await waitFor(() => member.state === 'forcedOpen', BOUND_MS)).toBe(true);
    expect(await callIn(member)).toBe('rejected');
    await expect(shown.locator('.action-result').textContent()).resolves.toBe(
      'forceOpen: closed → forcedOpen',
    );
    await expect(shown.locator('.history li').first().textContent()).resolves.toMatch(
      /closed → forcedOpen forcedOpen/,
    );

    // The filter box: by name, or by state.
    await page.locator('#filter').fill('checkout');
    expect(await page.locator('.tile:visible').count()).toBe(1);
    await page.locator('#filter').fill('forcedopen');
    expect(await page.locator('.tile:visible .name').allTextContents()).toEqual([name]);
    await page.locator('#filter').fill('');

    const dir = mkdtempSync(join(tmpdir(), 'statebreaker-dashboard-'));
    const picture = join(dir, 'dashboard.png');
    await page.screenshot({ path: picture, fullPage: true });
    console.log(`dashboard screenshot: ${picture}`);
    await page.close();
  });

  it("a rate-only breaker's tile shows no limit and the fleet's rates, read from its window on Redis", async () => {
    const name = 'rated api';
    const config = {
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 75,
      slowCallRateThreshold: 90,
      slowCallDuration: 60_000,
      minimumCalls: 4,
      window: 60_000,
    };
    const store = redisStore();
    await forceOpen(store, name, { create: config });
    await reset(store, name);
    // Two instances of the fleet, each counting half of the calls.
    const one = new CircuitBreaker(name, { store, ...config, windowFlush: 20 });
    const other = new CircuitBreaker(name, { store: redisStore(), ...config, windowFlush: 20 });
    rated.push(one, other);
    await one.call(async () => 'ok');
    await one.call(() => Promise.reject(new Error('down'))).catch(() => undefined);

    const page = await openPage(readOnly);
    const shown = tile(page, name);
    await shown.waitFor({ timeout: BOUND_MS });
    await expect(shown.locator('[data-field="failures"]').textContent()).resolves.toBe(
      '0 / Infinity',
    );
    const failureRate = shown.locator('[data-field="failureRate"]');
    await failureRate.filter({ hasText: '— (2 of 4 calls)' }).waitFor({ timeout: BOUND_MS });

    await other.call(async () => 'ok');
    await other.call(() => Promise.reject(new Error('down'))).catch(() => undefined);
    await failureRate.filter({ hasText: '50.0 % / 75 %' }).waitFor({ timeout: BOUND_MS });
    await expect(shown.locator('[data-field="slowCallRate"]').textContent()).resolves.toBe(
      '0.0 % / 90 %',
    );
    expect(one.state).toBe('closed');
    await page.close();
  });

  it("a name's control characters and bidi marks are escaped on its tile and in the question an action asks", async () => {
    const name = 'tenant-\u202eevil-\u001b[31m-\u0007';
    const label = 'tenant-\\u202eevil-\\u001b[31m-\\u0007';
    const breaker = new CircuitBreaker(name, { store: redisStore(), failMax: 5 });
    rated.push(breaker);
    await breaker.call(() => Promise.reject(new Error('down'))).catch(() => undefined);
    await breaker.settled();
    const page = await openPage(operated);
    await page.locator('#token').fill(TOKEN);
    await page.locator('#unlock button[type="submit"]').click();
    await page.locator('#mode[data-mode="operator"]').waitFor({ timeout: BOUND_MS });
    const shown = tile(page, label);
    await shown.waitFor({ timeout: BOUND_MS });
    await expect(shown.locator('.name').getAttribute('title')).resolves.toBe(label);
    await shown.locator('button[data-action="reset"]').click();
    await expect(shown.locator('.confirm-text').textContent()).resolves.toBe(
      `Reset "${label}" for the whole fleet? The circuit closes and its counters are cleared.`,
    );
    await expect(shown.locator('.name').textContent()).resolves.toBe(label);
    await shown.locator('button.cancel').click();
    await page.close();
  });

  it('without a token: no button, a breaker name shows as text, forged writes are refused and change nothing', async () => {
    const page = await openPage(readOnly);
    const shown = tile(page, XSS_NAME);
    await shown.waitFor({ timeout: BOUND_MS });
    await expect(page.locator('#mode').textContent()).resolves.toBe('read-only');
    expect(await page.locator('#unlock').isVisible()).toBe(false);
    expect(await page.locator('button[data-action]').count()).toBe(0);

    // The name is text: no element made of it, and nothing of it ran.
    await expect(shown.locator('.name').textContent()).resolves.toBe(XSS_NAME);
    expect(await page.locator('.tile script, .tile img').count()).toBe(0);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();

    const before = await readBreaker(stores[0] as RedisStore, XSS_NAME);
    const statuses = await page.evaluate(
      async ({ name, operatedUrl }) => {
        const body = JSON.stringify({ name });
        const forge = (headers: Record<string, string>) =>
          fetch('api/actions/forceOpen', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', ...headers },
            body,
          }).then((r) => r.status);
        const statuses = [await forge({}), await forge({ Authorization: 'Bearer guessed' })];
        // From this page to the dashboard that has a token: another origin (another port),
        // so the browser sends it without credentials and the server refuses it.
        await fetch(`${operatedUrl}api/actions/forceOpen`, {
          method: 'POST',
          mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' },
          body,
        }).catch(() => undefined);
        return statuses;
      },
      { name: XSS_NAME, operatedUrl: operated.url },
    );
    expect(statuses).toEqual([403, 403]);
    const after = await readBreaker(stores[0] as RedisStore, XSS_NAME);
    expect(after.version).toBe(before.version);
    expect(after.state).toBe('closed');
    expect(xssBreaker.state).toBe('closed');
    await page.close();
  });
});

import { ConfigMismatchError, CorruptRecordError } from 'statebreaker';
import { DEFAULT_PREFIX } from 'statebreaker/redis';
import { describe, expect, it } from 'vitest';
import { breakerKeys } from '../src/stores/redis/keys.js';
import {
  converge,
  type Member,
  settle,
  storedRecord,
  useFaultHarness,
} from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// Records someone else garbled, and instances configured differently, on a real redis-server.

const harness = useFaultHarness();

const config = {
  failMax: 2,
  resetTimeout: 60_000,
  successThreshold: 2,
  halfOpenMaxCalls: 1,
  probeLease: 30_000,
};

function snapshotJson(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schema: 1,
    status: 'active',
    value: 'closed',
    context: {
      config,
      failures: 1,
      successes: 0,
      openedAt: null,
      probes: {},
      generation: 0,
      reason: 'init',
    },
    ...overrides,
  });
}

type Field = 'snapshot' | 'version';
interface Garbling {
  readonly label: string;
  /** The key the report must name. */
  readonly blame: Field;
  write(keys: Record<Field, string>): Promise<unknown>;
}

const garblings: Garbling[] = [
  {
    label: 'invalid JSON in the snapshot',
    blame: 'snapshot',
    write: (k) => harness.admin.mset(k.version, '7', k.snapshot, '{"status": "act'),
  },
  {
    label: 'a snapshot of another schema version',
    blame: 'snapshot',
    write: (k) => harness.admin.mset(k.version, '7', k.snapshot, snapshotJson({ schema: 99 })),
  },
  {
    label: 'a state the statechart does not know',
    blame: 'snapshot',
    write: (k) => harness.admin.mset(k.version, '7', k.snapshot, snapshotJson({ value: 'ajar' })),
  },
  {
    label: 'a broken counter',
    blame: 'snapshot',
    write: (k) =>
      harness.admin.mset(
        k.version,
        '7',
        k.snapshot,
        snapshotJson({ context: { ...JSON.parse(snapshotJson()).context, failures: -3 } }),
      ),
  },
  {
    label: 'a non-numeric version',
    blame: 'version',
    write: (k) => harness.admin.mset(k.version, 'seven', k.snapshot, snapshotJson()),
  },
  {
    label: 'a snapshot key of the wrong type (WRONGTYPE)',
    blame: 'snapshot',
    write: async (k) => {
      await harness.admin.set(k.version, '7');
      await harness.admin.hset(k.snapshot, 'value', 'closed');
    },
  },
  {
    label: 'a version key of the wrong type (WRONGTYPE)',
    blame: 'version',
    write: async (k) => {
      await harness.admin.hset(k.version, 'n', '7');
      await harness.admin.set(k.snapshot, snapshotJson());
    },
  },
];

describe('a corrupt record', () => {
  it.each(garblings)('$label: reported with its key, replaced, never thrown', async (garbling) => {
    const name = harness.begin('corrupt');
    const keys = breakerKeys(DEFAULT_PREFIX, name);
    await garbling.write(keys);

    const a = harness.join(name);
    const watcher = harness.join(name);
    await a.breaker.settled();
    await watcher.breaker.settled();
    const key = keys[garbling.blame];
    // Reported by an event naming the key, as a CorruptRecordError; the breaker starts closed.
    expect(a.storeErrorKeys).toContain(key);
    expect(a.storeErrors.some((e) => e instanceof CorruptRecordError && e.key === key)).toBe(true);
    expect(a.breaker.state).toBe('closed');
    expect(a.events).not.toContain('degraded');

    // Calls flow and the statechart decides: two failures trip it.
    expect(await settle(a.breaker, 'ok')).toBe('ok');
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(a.breaker.state).toBe('open');
    expect(await settle(a.breaker, 'ok')).toBe('rejected');
    await a.breaker.settled();

    // Redis now holds a valid record of the open circuit, which every instance adopts.
    expect(await waitFor(async () => (await storedRecord(harness.admin, a, name)) !== null)).toBe(
      true,
    );
    const record = await storedRecord(harness.admin, a, name);
    expect(record?.snapshot.value).toBe('open');
    expect(await harness.admin.type(key)).toBe('string');
    const late = harness.join(name);
    await late.breaker.settled();
    expect(late.breaker.state).toBe('open');
    expect(late.storeErrors).toEqual([]);
    expect(await converge(harness.admin, [a, watcher, late], name)).toBe(true);
    expect(a.events).not.toContain('degraded');
  });

  it('a change message that cannot be read is reported with the channel and changes nothing', async () => {
    const name = harness.begin('bad message');
    const a = harness.join(name);
    await a.breaker.settled();
    await settle(a.breaker, 'fail');
    await a.breaker.settled();
    const channel = `${a.store.options.prefix}changes`;
    await harness.admin.publish(
      channel,
      `99\n${snapshotJson({ schema: 99, value: 'open' })}\n\n${name}`,
    );
    expect(await waitFor(() => a.storeErrorKeys.includes(channel))).toBe(true);
    expect(a.breaker.state).toBe('closed');
    expect(a.breaker.context.failures).toBe(1);
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(a.breaker.state).toBe('open');
    expect(await converge(harness.admin, [a], name)).toBe(true);
  });
});

describe('instances configured differently on one name', () => {
  it('each decides by its own configuration, writes carry it, and each difference is reported once', async () => {
    const name = harness.begin('config');
    const strict = harness.join(name, { failMax: 2 });
    const lenient = harness.join(name, { failMax: 4 });
    await strict.breaker.settled();
    await lenient.breaker.settled();
    const mismatches = (m: Member) =>
      m.storeErrors.filter((e): e is ConfigMismatchError => e instanceof ConfigMismatchError);

    await settle(strict.breaker, 'fail');
    expect(await waitFor(() => lenient.breaker.context.failures === 1)).toBe(true);
    expect(mismatches(lenient).map((e) => e.differences)).toEqual([['failMax (4 vs 2)']]);

    // Three failures are below the lenient instance's failMax: it stays closed, and its write
    // carries its own configuration.
    await settle(lenient.breaker, 'fail');
    await settle(lenient.breaker, 'fail');
    expect(lenient.breaker.state).toBe('closed');
    await lenient.breaker.settled();
    const written = await storedRecord(harness.admin, lenient, name);
    expect(written?.snapshot.context.config.failMax).toBe(4);
    expect(written?.snapshot.context.failures).toBe(3);

    // The strict instance adopts the count under its own failMax: its next failure trips.
    expect(await waitFor(() => strict.breaker.context.failures === 3)).toBe(true);
    expect(mismatches(strict).map((e) => e.differences)).toEqual([['failMax (2 vs 4)']]);
    expect(await settle(strict.breaker, 'fail')).toBe('upstream');
    expect(strict.breaker.state).toBe('open');
    expect(await converge(harness.admin, [strict, lenient], name)).toBe(true);
    expect(lenient.breaker.state).toBe('open');
    // Several records adopted, one difference: one report each.
    expect(mismatches(lenient)).toHaveLength(1);
    expect(mismatches(strict)).toHaveLength(1);
  });
});

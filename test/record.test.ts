import { describe, expect, it } from 'vitest';
import { LINEAGE } from '../src/record/lineage.js';
import { descentOf, NO_DESCENT, nextRecord } from '../src/record/next.js';
import { isVersion, MAX_VERSION, versionAbove } from '../src/record/order.js';
import type { PersistedBreakerSnapshot } from '../src/record/shape.js';
import { decodeSnapshot, parseVersion, recordProblem } from '../src/record/validation.js';
import { snapshotJson } from './support/stored-snapshot.js';

// The record module's rules on their own: the one builder of the next record, the version a
// write over an unreadable record takes, and validation.

const base: PersistedBreakerSnapshot = {
  ...(JSON.parse(snapshotJson('closed', { failures: 1 }, 'a:1')) as PersistedBreakerSnapshot),
  lineage: 'a:0',
  origin: 'a:0',
};

describe('the next record', () => {
  it('carries the base on: a fresh write id, the lineage after the base, the line when asked', () => {
    const next = nextRecord(base, 2, 'b:1', descentOf(base), true);
    expect(next.version).toBe(2);
    expect(next.snapshot).toMatchObject({ writeId: 'b:1', lineage: 'a:0 a:1', origin: 'a:0' });
    expect(nextRecord(base, 2, 'b:1', descentOf(base), false).snapshot.origin).toBeUndefined();
  });

  it('built on nothing: no lineage, and a line of its own when records name theirs', () => {
    const next = nextRecord(base, 1, 'b:1', NO_DESCENT, true);
    expect(next.snapshot.lineage).toBeUndefined();
    expect(next.snapshot.origin).toBe('b:1');
    expect(nextRecord(base, 1, 'b:1', NO_DESCENT, false).snapshot).not.toHaveProperty('origin');
  });

  it('keeps the last few ancestors only', () => {
    let snapshot = base;
    for (let i = 0; i < 10; i++)
      snapshot = nextRecord(snapshot, i + 2, `w:${i}`, descentOf(snapshot), false).snapshot;
    expect(snapshot.lineage?.split(' ')).toHaveLength(LINEAGE);
    expect(snapshot.lineage?.split(' ').at(-1)).toBe('w:8');
  });
});

describe('a version above every held one', () => {
  it('is a valid version above what counting reaches, and grows with the clock', () => {
    const now = Date.UTC(2026, 0, 1);
    const version = versionAbove(now);
    expect(isVersion(version)).toBe(true);
    // Counting one version per write for ten years at a thousand writes a second stays below.
    expect(version).toBeGreaterThan(1_000 * 86_400 * 365 * 10);
    expect(versionAbove(now + 1)).toBeGreaterThan(version);
    // Centuries from now, still below the limit.
    expect(versionAbove(Date.UTC(2400, 0, 1))).toBeLessThan(MAX_VERSION);
  });
});

describe('validation', () => {
  it('names what is wrong with a version or a snapshot', () => {
    expect(recordProblem({ version: 3, snapshot: base })).toBeUndefined();
    expect(recordProblem({ version: MAX_VERSION, snapshot: base })).toMatch(/is not a version/);
    expect(parseVersion('12')).toBe(12);
    expect(parseVersion(String(MAX_VERSION))).toBeNull();
    expect(parseVersion('1e3')).toBeNull();
    expect(decodeSnapshot('{"status": "act')).toMatchObject({
      problem: expect.stringMatching(/^not JSON/),
    });
    // failMax Infinity is stored as null and read back as Infinity.
    const off = {
      ...base,
      context: {
        ...base.context,
        config: { ...base.context.config, failMax: Number.POSITIVE_INFINITY },
      },
    };
    // A reason the statechart never gives: text from whoever can write the store.
    for (const reason of ['x\u001b]0;pwned\u0007', 'toString', 42, undefined]) {
      const odd = { ...base, context: { ...base.context, reason } };
      expect(decodeSnapshot(JSON.stringify(odd))).toMatchObject({
        problem: `context.reason is ${JSON.stringify(reason)}`,
      });
    }
    const decoded = decodeSnapshot(JSON.stringify(off));
    expect('snapshot' in decoded && decoded.snapshot.context.config.failMax).toBe(
      Number.POSITIVE_INFINITY,
    );
  });
});

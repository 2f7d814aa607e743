import { describe, expect, it } from 'vitest';
import { orderOf, type RecordStamp, supersedes } from '../src/record/order.js';
import { MAX_PENDING, PendingEvents } from '../src/replica/pending.js';
import {
  type Reconciliation,
  type RecordSource,
  type ReplicaKnowledge,
  reconcile,
} from '../src/replica/reconcile.js';

const stamp = (version: number, writeId?: string): RecordStamp => ({ version, writeId });

function knowing(base: RecordStamp | null, own: readonly string[] = []): ReplicaKnowledge {
  return { base, isOwnWrite: (writeId) => writeId !== undefined && own.includes(writeId) };
}

describe('record order: one rule for stores and replicas', () => {
  it.each([
    [stamp(2, 'a'), null, 'newer'],
    [stamp(3, 'a'), stamp(2, 'b'), 'newer'],
    [stamp(1, 'a'), stamp(2, 'b'), 'older'],
    [stamp(2, 'a'), stamp(2, 'a'), 'same'],
    [stamp(2, 'a'), stamp(2, 'b'), 'sibling'],
    [stamp(2), stamp(2), 'same'],
    [stamp(2), stamp(2, 'b'), 'sibling'],
  ] as const)('%o against %o is %s', (record, known, order) => {
    expect(orderOf(record, known)).toBe(order);
    expect(supersedes(record, known)).toBe(order === 'newer' || order === 'sibling');
  });
});

describe('record order after an idle record lapsed', () => {
  const lapsing = (version: number, writeId: string, origin: string): RecordStamp => ({
    version,
    writeId,
    origin,
    lapses: true,
  });
  const of = (version: number, writeId: string, origin: string): RecordStamp => ({
    version,
    writeId,
    origin,
  });
  it.each([
    [
      'a record of another line, lower in number, follows a lapsing one',
      of(1, 'c1', 'c1'),
      lapsing(9, 'a9', 'a1'),
      true,
    ],
    ['a late record of the same line does not', of(8, 'a8', 'a1'), lapsing(9, 'a9', 'a1'), false],
    [
      'nor does a lower one of another line where the known record is kept',
      of(1, 'c1', 'c1'),
      of(9, 'a9', 'a1'),
      false,
    ],
    ['nor the same record', lapsing(9, 'a9', 'a1'), lapsing(9, 'a9', 'a1'), false],
    ['a newer one does, as ever', of(10, 'a10', 'a1'), lapsing(9, 'a9', 'a1'), true],
  ] as const)('%s', (_, record, known, expected) => {
    expect(supersedes(record, known)).toBe(expected);
    expect(reconcile(knowing(known), record, 'feed')).toBe(expected ? 'adopt' : 'ignore');
  });
});

describe('reconcile: what an instance does with a record it meets', () => {
  const base = stamp(5, 'b5');
  // [case, base, own open writes, stored, source, sent base, expected]
  const table: [
    string,
    RecordStamp | null,
    string[],
    RecordStamp | null,
    RecordSource,
    RecordStamp | null,
    Reconciliation,
  ][] = [
    [
      'its own write, met on the feed before the reply',
      base,
      ['w6'],
      stamp(6, 'w6'),
      'feed',
      null,
      'confirm',
    ],
    [
      'its own write, met in a read after a timeout',
      base,
      ['w6'],
      stamp(6, 'w6'),
      'read',
      null,
      'confirm',
    ],
    [
      'its own write, met as the conflict of a later write',
      base,
      ['w6'],
      stamp(6, 'w6'),
      'conflict',
      base,
      'confirm',
    ],
    [
      'a newer record on the feed, even with a write in flight',
      base,
      ['w6'],
      stamp(6, 'x6'),
      'feed',
      null,
      'adopt',
    ],
    ['a newer record in a read', base, [], stamp(9, 'x9'), 'read', null, 'adopt'],
    ['a newer record in a conflict', base, [], stamp(7, 'x7'), 'conflict', base, 'adopt'],
    [
      'the first record of an instance that knew none',
      null,
      [],
      stamp(1, 'x1'),
      'feed',
      null,
      'adopt',
    ],
    [
      'a sibling (same version, other write) the store holds',
      base,
      [],
      stamp(5, 'x5'),
      'read',
      null,
      'adopt',
    ],
    ['a sibling on the feed', base, [], stamp(5, 'x5'), 'feed', null, 'adopt'],
    ['its base again on the feed', base, [], stamp(5, 'b5'), 'feed', null, 'ignore'],
    [
      'its base in a conflict (the base moved while the write was out)',
      base,
      [],
      stamp(5, 'b5'),
      'conflict',
      stamp(4, 'b4'),
      'ignore',
    ],
    [
      'its unchanged base in a conflict (the write key no longer matches): written over',
      base,
      [],
      stamp(5, 'b5'),
      'conflict',
      base,
      'recreate',
    ],
    ['an older feed message that arrived late', base, [], stamp(4, 'b4'), 'feed', null, 'ignore'],
    [
      'an older read that was sent before the base moved',
      base,
      [],
      stamp(4, 'b4'),
      'read',
      null,
      'ignore',
    ],
    ['nothing stored, in a read', base, [], null, 'read', null, 'ignore'],
    [
      'an older record in a conflict on an unchanged base: data lost',
      base,
      [],
      stamp(3, 'b3'),
      'conflict',
      base,
      'recreate',
    ],
    [
      'nothing stored in a conflict on an unchanged base: data lost',
      base,
      [],
      null,
      'conflict',
      base,
      'recreate',
    ],
    [
      'nothing stored in a conflict of a first write over an unreadable record',
      null,
      [],
      null,
      'conflict',
      null,
      'recreate',
    ],
    [
      'an older record in a conflict after the base moved on',
      base,
      [],
      stamp(4, 'b4'),
      'conflict',
      stamp(3, 'b3'),
      'ignore',
    ],
    [
      'nothing stored in a conflict after the base moved on',
      base,
      [],
      null,
      'conflict',
      stamp(4, 'b4'),
      'ignore',
    ],
  ];
  it.each(table)('%s', (_, known, own, stored, source, sentBase, expected) => {
    expect(reconcile(knowing(known, own), stored, source, sentBase)).toBe(expected);
  });

  it('never ignores a record newer than the base, from any source, with or without writes out', () => {
    for (const source of ['feed', 'read', 'conflict'] as const) {
      for (const own of [[], ['w6'], ['w6', 'w7']]) {
        for (const stored of [stamp(6, 'x6'), stamp(8, 'x8'), stamp(5, 'x5')]) {
          expect(reconcile(knowing(base, own), stored, source, base)).toBe('adopt');
        }
      }
    }
  });
});

describe('pending events: bounded, confirmed once', () => {
  const failure = { type: 'FAILURE', generation: 0, at: 0 } as const;

  it('confirms up to a sequence number, and a second confirmation changes nothing', () => {
    const pending = new PendingEvents();
    const seqs = [pending.push(failure), pending.push(failure), pending.push(failure)];
    expect(seqs).toEqual([1, 2, 3]);
    pending.confirmUpTo(2);
    expect(pending.size).toBe(1);
    expect(pending.fate(1)).toBe(true);
    expect(pending.fate(3)).toBeUndefined();
    pending.confirmUpTo(2);
    expect(pending.size).toBe(1);
  });

  it('drops on replay what no longer changes anything, and says so', () => {
    const pending = new PendingEvents();
    const kept = pending.push(failure);
    const refused = pending.push({ type: 'PROBE_ACQUIRED', probeId: 'p', leaseUntil: 1, at: 0 });
    pending.replay((event) => event.type === 'FAILURE');
    expect(pending.size).toBe(1);
    expect(pending.fate(refused)).toBe(false);
    expect(pending.fate(kept)).toBeUndefined();
  });

  it(`keeps at most ${MAX_PENDING} events however long the store is away`, () => {
    const pending = new PendingEvents();
    for (let i = 0; i < 200_000; i++) pending.push(failure);
    expect(pending.size).toBe(MAX_PENDING);
    expect(pending.lastSeq).toBe(200_000);
    let replayed = 0;
    pending.replay(() => {
      replayed++;
      return true;
    });
    expect(replayed).toBe(MAX_PENDING);
  });
});

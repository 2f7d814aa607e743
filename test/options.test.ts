import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { type BreakerOptions, CircuitBreaker, MAX_NAME_LENGTH, MemoryStore } from '../src/index.js';

const MAX_DELAY = 2 ** 31 - 1;

/** A bad value, the error class it must raise, and how the message must show the value. */
type Bad = [value: unknown, error: typeof TypeError | typeof RangeError, shown: string];

const wrongTypes = (example: string): Bad[] => [
  [example, TypeError, JSON.stringify(example)],
  [null, TypeError, 'null'],
  [true, TypeError, 'true'],
  [{}, TypeError, 'an object'],
  [[3], TypeError, 'an array'],
  [5n, TypeError, '5n'],
  [() => 5, TypeError, 'a function'],
];

const notPositive: Bad[] = [
  [0, RangeError, '0'],
  [-1, RangeError, '-1'],
  [-0.5, RangeError, '-0.5'],
  [Number.NaN, RangeError, 'NaN'],
  [Number.POSITIVE_INFINITY, RangeError, 'Infinity'],
  [Number.NEGATIVE_INFINITY, RangeError, '-Infinity'],
];

const counts: Record<'failMax' | 'successThreshold' | 'halfOpenMaxCalls', Bad[]> = {
  // failMax: Infinity turns the consecutive rule off (test/policy-options.test.ts).
  failMax: [
    ...wrongTypes('5'),
    ...notPositive.filter(([value]) => value !== Number.POSITIVE_INFINITY),
    [2.5, RangeError, '2.5'],
  ],
  successThreshold: [...wrongTypes('2'), ...notPositive, [1.0001, RangeError, '1.0001']],
  halfOpenMaxCalls: [...wrongTypes('1'), ...notPositive, [0.5, RangeError, '0.5']],
};

const tooLong: Bad[] = [
  [MAX_DELAY + 1, RangeError, String(MAX_DELAY + 1)],
  [Number.MAX_SAFE_INTEGER, RangeError, String(Number.MAX_SAFE_INTEGER)],
];

const durations: Record<'resetTimeout' | 'probeLease' | 'timeout', Bad[]> = {
  resetTimeout: [...wrongTypes('30000'), ...notPositive, ...tooLong],
  probeLease: [...wrongTypes('1000'), ...notPositive, ...tooLong],
  timeout: [...wrongTypes('1000'), ...notPositive, ...tooLong],
};

const notAClock: Bad[] = [
  [{}, TypeError, 'an object'],
  [{ now: () => 0 }, TypeError, 'an object'],
  [{ now: () => 0, setTimeout: () => 0, clearTimeout: 'no' }, TypeError, 'an object'],
  [() => 0, TypeError, 'a function'],
  ['system', TypeError, '"system"'],
  [null, TypeError, 'null'],
];

const objects: Record<'classify' | 'store' | 'clock' | 'inspect', Bad[]> = {
  classify: [
    ['failure', TypeError, '"failure"'],
    [{ classify: () => 'failure' }, TypeError, 'an object'],
    [1, TypeError, '1'],
    [null, TypeError, 'null'],
  ],
  store: [
    [{}, TypeError, 'an object'],
    [new SimulatedClock(), TypeError, 'an object'],
    // A store without a clock, and one whose clock lacks timers.
    [{ load() {}, compareAndSet() {}, subscribe() {} }, TypeError, 'an object'],
    [
      { load() {}, compareAndSet() {}, subscribe() {}, clock: { now: () => 0 } },
      TypeError,
      'an object',
    ],
    ['redis://localhost', TypeError, '"redis://localhost"'],
    [null, TypeError, 'null'],
  ],
  clock: notAClock,
  inspect: [
    [{}, TypeError, 'an object'],
    [{ next: 'log' }, TypeError, 'an object'],
    ['ws://localhost:8080', TypeError, '"ws://localhost:8080"'],
    [1, TypeError, '1'],
    [null, TypeError, 'null'],
  ],
};

/** Constructs a breaker; the name defaults only when none is passed, so `undefined` is tested. */
function build(options: unknown, ...name: unknown[]) {
  const breakerName = name.length === 0 ? 'upstream' : name[0];
  return () => new CircuitBreaker(breakerName as string, options as BreakerOptions);
}

describe.each(Object.entries({ ...counts, ...durations, ...objects }))(
  'option %s',
  (option, cases) => {
    it.each(cases.map(([value, error, shown]) => ({ value, error, shown, label: shown })))(
      'refuses $label with a $error.name that names the option and the value',
      ({ value, error, shown }) => {
        let thrown: unknown;
        try {
          build({ [option]: value })();
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(error);
        const message = (thrown as Error).message;
        expect(message).toContain(`option ${option} `);
        expect(message).toContain(`got ${shown}`);
      },
    );
  },
);

describe('valid options', () => {
  it('accepts the boundaries and keeps the values', () => {
    const clock = new SimulatedClock();
    const store = new MemoryStore({ clock });
    const breaker = new CircuitBreaker('upstream', {
      failMax: 1,
      resetTimeout: MAX_DELAY,
      successThreshold: 1,
      halfOpenMaxCalls: 1,
      probeLease: 0.5,
      timeout: MAX_DELAY,
      classify: () => 'ignored',
      store,
      clock,
      inspect: () => undefined,
    });
    expect(breaker.config).toEqual({
      failMax: 1,
      resetTimeout: MAX_DELAY,
      successThreshold: 1,
      halfOpenMaxCalls: 1,
      probeLease: 0.5,
    });
    expect(breaker.clock).toBe(clock);
    expect(breaker.store).toBe(store);
  });

  it('treats an option given as undefined as not given', () => {
    const store = new MemoryStore({ clock: new SimulatedClock() });
    const breaker = new CircuitBreaker('upstream', {
      store,
      failMax: undefined,
      timeout: undefined,
    });
    expect(breaker.config.failMax).toBe(5);
  });

  it('accepts an inspection observer object', () => {
    const store = new MemoryStore({ clock: new SimulatedClock() });
    expect(
      () => new CircuitBreaker('upstream', { store, inspect: { next: () => undefined } }),
    ).not.toThrow();
  });
});

describe('the options object', () => {
  it.each([
    ['null', null],
    ['a number', 5],
    ['a string', 'failMax=5'],
    ['an array', [{ failMax: 5 }]],
    ['a function', () => ({ failMax: 5 })],
  ])('is refused when it is %s', (_label, options) => {
    expect(build(options)).toThrow(TypeError);
    expect(build(options)).toThrow(/options/);
  });

  it.each(['failmax', 'resetTimeOut', 'retries', 'onOpen'])('refuses the unknown key %s', (key) => {
    expect(build({ [key]: 1 })).toThrow(TypeError);
    expect(build({ [key]: 1 })).toThrow(`"${key}"`);
  });
});

describe('the name', () => {
  it('refuses an empty name', () => {
    expect(build({}, '')).toThrow(RangeError);
    expect(build({}, '')).toThrow(/name/);
  });

  it(`refuses a name longer than MAX_NAME_LENGTH (${MAX_NAME_LENGTH})`, () => {
    const long = 'n'.repeat(MAX_NAME_LENGTH + 1);
    expect(build({}, long)).toThrow(RangeError);
    expect(build({}, long)).toThrow(String(MAX_NAME_LENGTH + 1));
    expect(build({ store: new MemoryStore() }, 'n'.repeat(MAX_NAME_LENGTH))).not.toThrow();
  });

  it.each([
    ['a number', 42, 'number'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['an object', { name: 'x' }, 'object'],
    ['a symbol', Symbol('x'), 'symbol'],
  ])('refuses %s with a TypeError', (_label, name, shown) => {
    expect(build({}, name)).toThrow(TypeError);
    expect(build({}, name)).toThrow(/name/);
    expect(build({}, name)).toThrow(shown === 'null' ? /null|object/ : shown);
  });
});

/**
 * One memory sample, in a fresh process so that no other variant's garbage or compiled code
 * is in the heap: `memory-child.ts <variant> <mode> [idleMs]`, printing one JSON line.
 * Modes: `fresh` (created only), `called` (after one successful call each), `open` (tripped
 * by five failures; statebreaker only).
 */
import { CircuitBreaker, getCircuitBreaker, MemoryStore } from '../src/index.js';
import { HandWrittenBreaker } from './hand-written.js';
import { collect, yieldToLoop } from './harness.js';
import { cockatielBreaker, OPOSSUM_LEAN, opossumBreaker } from './peers.js';

export const BREAKERS = 10_000;

export type Mode = 'fresh' | 'called' | 'open';

/** What a child reports. */
export interface MemorySample {
  readonly variant: string;
  readonly mode: Mode;
  readonly bytesPerBreaker: number;
  /** Timers alive, unref'd ones included, before and after creating the breakers. */
  readonly timersBefore: number;
  readonly timersAfter: number;
  /** Timers keeping the event loop alive (`process.getActiveResourcesInfo()`), after. */
  readonly refTimersBefore: number;
  readonly refTimersAfter: number;
  /** Percent of one core used while idle, when `idleMs` was given. */
  readonly idleCpuPercent: number | null;
}

const one = async () => 1;
const fail = async (): Promise<number> => {
  throw new Error('upstream down');
};

interface Subject {
  call(fn: () => Promise<number>): Promise<number>;
}

// Each factory returns a breaker and how to call through it.
const factories: Record<string, () => (name: string) => Subject> = {
  'hand-written': () => () => new HandWrittenBreaker(),
  'statebreaker (new, shared MemoryStore)': () => {
    const store = new MemoryStore();
    return (name) => new CircuitBreaker(name, { store });
  },
  'statebreaker (getCircuitBreaker)': () => (name) => getCircuitBreaker(name),
  'cockatiel 3.2': () => () => {
    const policy = cockatielBreaker();
    return { call: (fn) => policy.execute(fn) };
  },
  // Opossum binds its action at construction; every breaker here wraps the same one.
  'opossum 9, lean': () => (name) => {
    const breaker = opossumBreaker(one, { ...OPOSSUM_LEAN, name });
    return { call: () => breaker.fire() };
  },
};

export const VARIANTS = Object.keys(factories);

// Timers that keep the loop alive are the only ones process.getActiveResourcesInfo() lists;
// unref'd ones (statebreaker's, opossum's) are counted by wrapping the global timer functions.
const live = new Set<unknown>();
const { setTimeout: realSetTimeout, setInterval: realSetInterval } = globalThis;
const { clearTimeout: realClearTimeout, clearInterval: realClearInterval } = globalThis;
function trackTimers(): void {
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSetTimeout(
      (...a: unknown[]) => {
        live.delete(timer);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.setInterval = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSetInterval(fn, ms, ...args);
    live.add(timer);
    return timer;
  }) as typeof setInterval;
  globalThis.clearTimeout = ((timer: Parameters<typeof clearTimeout>[0]) => {
    live.delete(timer);
    realClearTimeout(timer);
  }) as typeof clearTimeout;
  globalThis.clearInterval = ((timer: Parameters<typeof clearInterval>[0]) => {
    live.delete(timer);
    realClearInterval(timer);
  }) as typeof clearInterval;
}

function refTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

async function sample(variant: string, mode: Mode, idleMs: number): Promise<MemorySample> {
  trackTimers();
  const factory = factories[variant];
  if (factory === undefined) throw new Error(`unknown variant ${variant}`);
  const make = factory();
  // Names and the holding array exist before the baseline, so only breakers are counted.
  const names = Array.from({ length: BREAKERS }, (_, i) => `bench-memory-${i}`);
  const held: Subject[] = new Array(BREAKERS).fill(null);
  const warm = make('bench-memory-warm-up');
  await warm.call(one);
  if (mode === 'open') for (let i = 0; i < 5; i++) await warm.call(fail).catch(() => undefined);
  await yieldToLoop();
  collect();
  const timersBefore = live.size;
  const refTimersBefore = refTimers();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < BREAKERS; i++) held[i] = make(names[i] ?? '');
  if (mode === 'called') for (const breaker of held) await breaker.call(one);
  if (mode === 'open') {
    for (const breaker of held) {
      for (let i = 0; i < 5; i++) await breaker.call(fail).catch(() => undefined);
    }
  }
  // Let background writes to the store settle before weighing.
  await yieldToLoop();
  await yieldToLoop();
  collect();
  const after = process.memoryUsage().heapUsed;
  const timersAfter = live.size;
  const refTimersAfter = refTimers();
  let idleCpuPercent: number | null = null;
  if (idleMs > 0) {
    const start = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const used = process.cpuUsage(start);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    idleCpuPercent = ((used.user + used.system) / wallUs) * 100;
  }
  // Names and breakers must stay reachable until weighed: a suspended async frame keeps only
  // live variables, and freed names would pass for smaller breakers.
  if (held.length !== BREAKERS || names.length !== BREAKERS || warm === undefined) {
    throw new Error('breakers were not held');
  }
  return {
    variant,
    mode,
    bytesPerBreaker: (after - before) / BREAKERS,
    timersBefore,
    timersAfter,
    refTimersBefore,
    refTimersAfter,
    idleCpuPercent,
  };
}

if (process.argv[1]?.endsWith('memory-child.ts')) {
  const [variant = '', mode = 'fresh', idle = '0'] = process.argv.slice(2);
  const result = await sample(variant, mode as Mode, Number(idle));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

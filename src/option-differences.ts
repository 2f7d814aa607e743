import type { BreakerConfig } from './machine.js';
import type { ResolvedOptions } from './options.js';
import { describeValue } from './validate.js';

// Compared by value or identity: another store or clock is another shared statechart or
// another time base.
const COMPARED = [
  'timeout',
  'firstChunkTimeout',
  'chunkTimeout',
  'store',
  'clock',
  'windowFlush',
] as const;
// Compared by presence only: a handler written inline where the breaker is asked for is a new
// function object on every call, yet the same code, so its identity says nothing.
const HANDLERS = ['classify', 'inspect', 'retryAfter'] as const;

/**
 * The options that differ between two resolved option sets, by name. `classify`, `inspect` and
 * `retryAfter` differ only when one set has it and the other not.
 */
export function optionDifferences(a: ResolvedOptions, b: ResolvedOptions): string[] {
  const differences: string[] = [];
  const keys = new Set([...Object.keys(a.config), ...Object.keys(b.config)]);
  for (const key of keys as Set<keyof BreakerConfig>) {
    if (a.config[key] !== b.config[key])
      differences.push(`${key} (${a.config[key]} vs ${b.config[key]})`);
  }
  const differ = (key: (typeof COMPARED)[number] | (typeof HANDLERS)[number]) =>
    differences.push(`${key} (${describeValue(a[key])} vs ${describeValue(b[key])})`);
  for (const key of COMPARED) if (a[key] !== b[key]) differ(key);
  for (const key of HANDLERS) if ((a[key] === undefined) !== (b[key] === undefined)) differ(key);
  return differences;
}

// The example of `statebreaker/testing` in docs/testing.md, run as a test. The block between
// the markers is the code below it, verbatim (checked at the end of this file); `npm run readme`
// copies it into docs/testing.md.
// README-EXAMPLE-START
// import { type CircuitBreaker, CircuitBreakerError } from 'statebreaker';
// import {
//   createPathBreaker,
//   createSimulatedClock,
//   getBreakerPaths,
//   runBreakerPath,
// } from 'statebreaker/testing';
// import { describe, expect, it } from 'vitest';
//
// // Your code: a summary from the LLM, or a cheap fallback while the circuit rejects calls.
// type Complete = (prompt: string, signal: AbortSignal) => Promise<string>;
//
// async function summarize(breaker: CircuitBreaker, complete: Complete, text: string) {
//   try {
//     const summary = await breaker.call((signal) => complete(`Summarize: ${text}`, signal));
//     return { summary, fallback: false };
//   } catch (error) {
//     if (error instanceof CircuitBreakerError) return { summary: text.slice(0, 40), fallback: true };
//     throw error;
//   }
// }
//
// // Your test: summarize() driven through every transition of the breaker's statechart.
// const { paths, config } = getBreakerPaths();
//
// describe('summarize() on every breaker path', () => {
//   it.each(paths.map((path) => [path.description, path] as const))('%s', async (_, path) => {
//     const clock = createSimulatedClock();
//     const breaker = createPathBreaker('llm', { clock, config });
//     await runBreakerPath(path, {
//       breakers: [breaker],
//       clock,
//       // `upstream` plays the LLM: it answers, fails or hangs as each step of the path says.
//       call: (breaker, upstream) => summarize(breaker, (_, signal) => upstream(signal), 'a text'),
//       // Every call the breaker rejects falls back, and no other call does.
//       onCallSettled: ({ startedBy, outcome }) => {
//         const fellBack = outcome.status === 'fulfilled' && outcome.value.fallback;
//         expect(fellBack).toBe(startedBy.rejects === true);
//       },
//     });
//     breaker.dispose();
//   });
// });
// README-EXAMPLE-END

import { type CircuitBreaker, CircuitBreakerError } from 'statebreaker';
import {
  createPathBreaker,
  createSimulatedClock,
  getBreakerPaths,
  runBreakerPath,
} from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';

// Your code: a summary from the LLM, or a cheap fallback while the circuit rejects calls.
type Complete = (prompt: string, signal: AbortSignal) => Promise<string>;

async function summarize(breaker: CircuitBreaker, complete: Complete, text: string) {
  try {
    const summary = await breaker.call((signal) => complete(`Summarize: ${text}`, signal));
    return { summary, fallback: false };
  } catch (error) {
    if (error instanceof CircuitBreakerError) return { summary: text.slice(0, 40), fallback: true };
    throw error;
  }
}

// Your test: summarize() driven through every transition of the breaker's statechart.
const { paths, config } = getBreakerPaths();

describe('summarize() on every breaker path', () => {
  it.each(paths.map((path) => [path.description, path] as const))('%s', async (_, path) => {
    const clock = createSimulatedClock();
    const breaker = createPathBreaker('llm', { clock, config });
    await runBreakerPath(path, {
      breakers: [breaker],
      clock,
      // `upstream` plays the LLM: it answers, fails or hangs as each step of the path says.
      call: (breaker, upstream) => summarize(breaker, (_, signal) => upstream(signal), 'a text'),
      // Every call the breaker rejects falls back, and no other call does.
      onCallSettled: ({ startedBy, outcome }) => {
        const fellBack = outcome.status === 'fulfilled' && outcome.value.fallback;
        expect(fellBack).toBe(startedBy.rejects === true);
      },
    });
    breaker.dispose();
  });
});

// ---- not part of the README example ----
import { readFileSync } from 'node:fs';

describe('the README example block', () => {
  it('is the code this file runs', () => {
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    const start = source.indexOf('// README-EXAMPLE-START\n') + '// README-EXAMPLE-START\n'.length;
    const end = source.indexOf('// README-EXAMPLE-END\n');
    const block = source
      .slice(start, end)
      .split('\n')
      .map((line) => line.replace(/^\/\/ ?/, ''))
      .join('\n');
    const code = source.slice(end).split('\n').slice(2).join('\n');
    expect(code.startsWith(block)).toBe(true);
  });
});

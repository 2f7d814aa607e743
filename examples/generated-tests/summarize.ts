// Your code, the code under test: a summary from an LLM, or a cheap fallback while the circuit
// rejects calls.
import { type CircuitBreaker, CircuitBreakerError } from 'statebreaker';

/** Asks the LLM; `signal` aborts the request. */
export type Complete = (prompt: string, signal: AbortSignal) => Promise<string>;

/** A summary, and whether it is the fallback (the circuit rejected the call). */
export interface Summary {
  readonly text: string;
  readonly fallback: boolean;
}

/** Summarizes `text` through `breaker`, or falls back to its first 40 characters. */
export async function summarize(
  breaker: CircuitBreaker,
  complete: Complete,
  text: string,
): Promise<Summary> {
  try {
    const summary = await breaker.call((signal) => complete(`Summarize: ${text}`, signal));
    return { text: summary, fallback: false };
  } catch (error) {
    if (error instanceof CircuitBreakerError) return { text: text.slice(0, 40), fallback: true };
    throw error;
  }
}

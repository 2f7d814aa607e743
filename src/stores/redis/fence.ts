// The operator fence on Redis: `compareAndSet-8.lua` sets it when an operator's write meets a
// conflict, and every other writer yields to it until the operator's next write lifts it.

import { CasReply, type CasReplyValue } from './scripts.js';

/**
 * How long a fence lives (ms): the operator's next write comes one round trip after its
 * conflict, so this only bounds how long an operator that went away holds the fleet's writes.
 */
export const FENCE_MS = 2_000;

// A fleet write that met a fence polls again this often (a little jitter keeps the fleet's
// retries apart); the fence's own lifetime bounds the wait.
const POLL_MS = 2;

/** Waits before a fenced write is tried again; `remainingMs` is the fence's PTTL. */
export function yieldToFence(remainingMs: number): Promise<void> {
  const wait = Math.max(1, Math.min(Number.isFinite(remainingMs) ? remainingMs : 1, POLL_MS));
  return new Promise((resolve) => setTimeout(resolve, wait + Math.random() * POLL_MS).unref());
}

/** A compare-and-set's reply once no fence held it back. */
export type Unfenced = Exclude<CasReplyValue, readonly [typeof CasReply.FENCED, number]>;

/**
 * Runs a compare-and-set until no fence holds it back: an operator's action is being written, so
 * the write yields until that lands (its fence is lifted by that write, or expires) and then
 * compares against what it wrote. `send` sends one attempt (with a fresh deadline each time).
 */
export async function pastFences(send: () => Promise<CasReplyValue>): Promise<Unfenced> {
  for (;;) {
    const reply = await send();
    if (reply[0] !== CasReply.FENCED) return reply;
    await yieldToFence(Number(reply[1]));
  }
}

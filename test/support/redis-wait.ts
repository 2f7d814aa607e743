/**
 * Polls `condition` until it holds, at most `boundMs`; returns whether it held. Each round
 * yields to the event loop (a macrotask), so network replies and timers can arrive.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  boundMs = 5_000,
): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

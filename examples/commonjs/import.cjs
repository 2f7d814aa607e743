// @ts-check
// statebreaker from CommonJS on any Node the package supports (20 and later): import() loads an
// ES module from CommonJS everywhere, where require() needs Node 20.19 or 22.12. It returns a
// promise, so it goes inside an async function: CommonJS has no top-level await.
//
//   node import.cjs
async function main() {
  const { CircuitBreaker, CircuitBreakerError } = await import('statebreaker');
  const breaker = new CircuitBreaker('inventory', { failMax: 1 });
  await breaker
    .call(() => Promise.reject(new Error('the inventory API answered 503')))
    .catch(() => {});
  try {
    await breaker.call(async () => 'not called');
  } catch (error) {
    if (!(error instanceof CircuitBreakerError)) throw error;
    console.log(`loaded with import(); rejected without a call: ${error.message}`);
  }
  breaker.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

// @ts-check
// statebreaker from CommonJS: a .cjs file, or a .js file in a project whose package.json says
// "type": "commonjs" (what `npm init -y` writes). statebreaker is an ES module, which Node loads
// with require() from Node 20.19 and 22.12 on (on older Node, see import.cjs). CommonJS has no
// top-level await: the program is an async function.
//
//   node main.cjs
const { CircuitBreaker, CircuitBreakerError } = require('statebreaker');

async function main() {
  const breaker = new CircuitBreaker('inventory', { failMax: 2 });
  console.log(`answered: ${await breaker.call(async () => 'in stock')}`);
  for (let i = 0; i < 2; i++) {
    try {
      await breaker.call(async () => {
        throw new Error('the inventory API answered 503');
      });
    } catch (error) {
      console.log(`failed: ${error instanceof Error ? error.message : error}`);
    }
  }
  try {
    await breaker.call(async () => 'not called');
  } catch (error) {
    if (!(error instanceof CircuitBreakerError)) throw error;
    console.log(`rejected without a call: ${error.message}`);
  }
  breaker.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

// A breaker's metrics for Prometheus: statebreaker/metrics registers them on prom-client's
// registry, a node:http server serves them on /metrics, and the program scrapes itself once,
// prints what Prometheus would read, and ends.
//
//   npx tsx main.ts            (PORT=9464 to choose the port; a free one by default)
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register } from 'prom-client';
import { CircuitBreakerError, getCircuitBreaker } from 'statebreaker';
import { prometheusMetrics } from 'statebreaker/metrics';

// Once per process: every breaker of the process, made before or after, is counted.
const metrics = prometheusMetrics({ registry: register });
const breaker = getCircuitBreaker('payments', { failMax: 2 });

const server = createServer(async (request, response) => {
  if (request.url !== '/metrics') {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, { 'content-type': register.contentType });
  response.end(await register.metrics());
});
await new Promise<void>((resolve) =>
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve),
);
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;

// Some traffic: a success, two failures that open the circuit, then a call it rejects.
await breaker.call(async () => 'paid');
for (let i = 0; i < 2; i++) {
  await breaker
    .call(async () => {
      throw new Error('the payments API answered 503');
    })
    .catch(() => undefined);
}
await breaker
  .call(async () => 'not called')
  .catch((error: unknown) => {
    if (!(error instanceof CircuitBreakerError)) throw error;
    console.log(`rejected without a call: ${error.message}`);
  });

const scrape = await (await fetch(url)).text();
console.log(`GET ${url} (histogram buckets left out):\n`);
console.log(
  scrape
    .split('\n')
    .filter((line) => !line.includes('_bucket{'))
    .join('\n'),
);

// Shutting down: stop the exporter (it unregisters its metrics), the breaker, the server.
metrics.stop();
breaker.dispose();
server.close();

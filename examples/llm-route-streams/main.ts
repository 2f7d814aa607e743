// A failover route over two OpenAI-compatible providers, every answer streamed, with the real
// `openai` SDK talking to two local fake providers. The primary answers, then fails (503), then
// drops the connection: each time the route moves the stream to the secondary, and the second
// failure opens the primary's circuit, so that the next stream skips the primary without calling
// it. Once the primary is back, after resetTimeout one probe stream closes its circuit.
//
//   npx tsx main.ts
import OpenAI from 'openai';
import { type CircuitBreaker, CircuitState, failover, getCircuitBreaker } from 'statebreaker';
import { llmClassify } from 'statebreaker/llm';
import { startFakeProvider } from './fake-provider.js';

const fakes = { primary: await startFakeProvider(), secondary: await startFakeProvider() };

// What the route hands your function for each target: here a client and a model.
interface Provider {
  readonly name: string;
  readonly client: OpenAI;
  readonly model: string;
}
const provider = (name: keyof typeof fakes): Provider => ({
  name,
  // The route, not the SDK, moves on from a failing provider: no SDK retries.
  client: new OpenAI({ baseURL: fakes[name].baseURL, apiKey: 'fake-key', maxRetries: 0 }),
  model: 'gpt-4o-mini',
});

const options = {
  // 5xx, 429, dropped connections and timeouts are failures; a 400 or a 401 is the request's
  // fault, ignored: it would fail on any provider.
  classify: llmClassify,
  failMax: 2,
  resetTimeout: 5_000,
  successThreshold: 1,
  // A stream whose first token takes longer fails, and the route tries the next provider.
  firstChunkTimeout: 10_000,
  // Once tokens flow, a longer gap cuts the stream (no failover: the caller has part of it).
  chunkTimeout: 10_000,
};
const primary = getCircuitBreaker('primary', options);
const secondary = getCircuitBreaker('secondary', options);
for (const breaker of [primary, secondary]) {
  breaker.on('stateChange', ({ name, from, to, reason }) =>
    console.log(`   circuit ${name}: ${from} → ${to} (${reason})`),
  );
}

const chat = failover<Provider>(
  [
    { breaker: primary, value: provider('primary') },
    { breaker: secondary, value: provider('secondary') },
  ],
  { name: 'chat' },
);
chat.on('failover', ({ from, to, reason }) =>
  console.log(`   route chat: ${from} → ${to ?? 'none'} (${reason})`),
);

/** The tokens of one streamed chat completion. */
async function* tokens({ client, model }: Provider, question: string, signal: AbortSignal) {
  const stream = await client.chat.completions.create(
    { model, stream: true, messages: [{ role: 'user', content: question }] },
    { signal },
  );
  for await (const part of stream) {
    const token = part.choices[0]?.delta.content;
    if (token) yield token;
  }
}

/** Streams one answer through the route and prints who answered it. */
async function ask(question: string): Promise<void> {
  let answeredBy = '';
  let answer = '';
  const stream = chat.stream((target, signal) => {
    answeredBy = target.name;
    return tokens(target, question, signal);
  });
  for await (const token of stream) answer += token;
  console.log(`   answered by ${answeredBy}: "${answer}"`);
}

/** Resolves once `breaker` is half-open: its resetTimeout has passed. */
function halfOpen(breaker: CircuitBreaker): Promise<void> {
  if (breaker.state === CircuitState.HALF_OPEN) return Promise.resolve();
  return new Promise((resolve) => {
    const off = breaker.on('stateChange', ({ to }) => {
      if (to !== CircuitState.HALF_OPEN) return;
      off();
      resolve();
    });
  });
}

console.log('1. Both providers are up: the primary answers.');
await ask('What does a circuit breaker do?');

console.log('2. The primary answers 503: the route fails over to the secondary.');
fakes.primary.mode = 'down';
await ask('What does a circuit breaker do?');

console.log('3. The primary drops the connection: failover again, and its circuit opens.');
fakes.primary.mode = 'drop';
await ask('What does a circuit breaker do?');

console.log("4. The primary's circuit is open: the route skips it without calling it.");
const before = fakes.primary.requests;
await ask('What does a circuit breaker do?');
console.log(`   requests the primary received: ${fakes.primary.requests - before}`);

console.log(
  '5. The primary is back; after resetTimeout (5 s), one probe stream closes its circuit.',
);
fakes.primary.mode = 'up';
await halfOpen(primary);
const beforeProbe = fakes.primary.requests;
await ask('What does a circuit breaker do?');
console.log(`   requests the primary received: ${fakes.primary.requests - beforeProbe}`);

primary.dispose();
secondary.dispose();
await Promise.all([fakes.primary.close(), fakes.secondary.close()]);

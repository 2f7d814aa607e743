import { readBreaker } from '../../admin/read.js';
import { CircuitBreaker } from '../../breaker.js';
import { configOptions } from '../../options.js';
import type { Command } from '../command.js';
import { parsePort } from '../port.js';

// Not the dashboard's 8080: an operator runs both at once.
const DEFAULT_PORT = 8081;

type InspectModules = {
  createInspectorServer: typeof import('@statelyai/inspect/server').createInspectorServer;
  createWebSocketInspector: typeof import('@statelyai/inspect').createWebSocketInspector;
};

// @statelyai/inspect is an optional peer: only this command loads it, and says how to get it.
async function loadInspect(): Promise<InspectModules> {
  try {
    const [{ createInspectorServer }, { createWebSocketInspector }] = await Promise.all([
      import('@statelyai/inspect/server'),
      import('@statelyai/inspect'),
    ]);
    return { createInspectorServer, createWebSocketInspector };
  } catch {
    throw new Error(
      'inspect needs @statelyai/inspect (an optional peer dependency): npm install @statelyai/inspect',
    );
  }
}

export const inspect: Command = {
  name: 'inspect',
  summary: "the fleet's breaker as one live actor in the Stately inspector",
  description:
    "Starts @statelyai/inspect's inspector server on --port (the page it serves embeds stately.ai/inspect, so the browser needs internet access) and follows NAME's shared record as one actor, under the stored configuration, until interrupted. It makes no call; like any instance it may write a transition its own timer makes (open to half-open).",
  args: [{ name: 'NAME' }],
  options: {
    port: {
      type: 'string',
      value: 'PORT',
      help: `inspector server port (default ${DEFAULT_PORT})`,
    },
  },
  usesRedis: true,
  async run({ args, values, out, store, io }) {
    const name = args[0] as string;
    const port = parsePort(values.port, DEFAULT_PORT);
    const redisStore = await store();
    const { config } = await readBreaker(redisStore, name);
    const { createInspectorServer, createWebSocketInspector } = await loadInspect();
    const stopped = io.untilStopped();
    const server = createInspectorServer({ port, autoOpen: false });
    const inspector = createWebSocketInspector({ url: `ws://localhost:${port}` });
    const breaker = new CircuitBreaker(name, {
      ...configOptions(config),
      store: redisStore,
      inspect: inspector.inspect,
    });
    try {
      await breaker.settled();
      out.note(`inspecting ${JSON.stringify(name)}: open http://localhost:${port} (Ctrl-C stops)`);
      await stopped;
    } finally {
      breaker.dispose();
      inspector.stop();
      server.stop();
    }
    // The inspector server does not close the connections of open inspector pages on stop.
    io.exit?.(0);
  },
};

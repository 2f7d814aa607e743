import { isLoopback } from '../../dashboard/access.js';
import { startDashboard } from '../../dashboard/index.js';
import { checkToken } from '../../dashboard/options.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parsePort } from '../port.js';

const DEFAULT_PORT = 8080;
const TOKEN_VARIABLE = 'STATEBREAKER_TOKEN';

export const dashboard: Command = {
  name: 'dashboard',
  summary: 'serve the live dashboard of every breaker',
  description: `Serves one page that follows every breaker under the prefix live (Server-Sent Events from the change feed), on http://127.0.0.1:${DEFAULT_PORT} unless --host or --port say otherwise, until interrupted. Read-only unless a token is given (--token, or $${TOKEN_VARIABLE}, which keeps it out of the process list): the page then offers force open, disable and reset to whoever enters it.`,
  args: [],
  options: {
    host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1)' },
    port: { type: 'string', value: 'PORT', help: `port to listen on (default ${DEFAULT_PORT})` },
    token: {
      type: 'string',
      value: 'TOKEN',
      help: `enables operator actions for whoever enters it (default $${TOKEN_VARIABLE})`,
    },
  },
  usesRedis: true,
  async run({ values, out, store, io }) {
    const port = parsePort(values.port, DEFAULT_PORT);
    const host = values.host;
    if (host !== undefined && (typeof host !== 'string' || host.trim() === '')) {
      throw new UsageError(`--host must be an address, got ${JSON.stringify(host)}`);
    }
    const given = typeof values.token === 'string' ? values.token : io.env[TOKEN_VARIABLE];
    // An empty variable is an unset one: a read-only dashboard.
    const token = given === undefined || given === '' ? undefined : given;
    if (token !== undefined) {
      try {
        checkToken(token, typeof values.token === 'string' ? '--token' : `$${TOKEN_VARIABLE}`);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
    const redisStore = await store();
    const stopped = io.untilStopped();
    const running = await startDashboard({
      store: redisStore,
      port,
      ...(host === undefined ? {} : { host }),
      ...(token === undefined ? {} : { token }),
    });
    try {
      const mode = running.writable ? 'operator actions need the token' : 'read-only';
      out.note(`dashboard on ${running.url} (${mode}); Ctrl-C stops`);
      if (host !== undefined && !isLoopback(host)) {
        const act = running.writable
          ? ', and the token travels over plain HTTP: put a TLS proxy in front'
          : '';
        out.note(
          `warning: --host ${host} is not loopback: whoever reaches this machine on port ${port} sees every breaker's name and state${act}; --host 127.0.0.1 keeps it to this machine`,
        );
      }
      await stopped;
    } finally {
      await running.close();
    }
  },
};

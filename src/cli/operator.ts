import { type ConfigOptions, createConfig, type OperatorResult } from '../admin/actions.js';
import { BreakerNotFoundError } from '../admin/errors.js';
import { NO_LIMIT, readNoLimit } from '../admin/view.js';
import type { RedisStore } from '../stores/redis/index.js';
import { type Command, type CommandOption, UsageError } from './command.js';
import { quoted } from './output.js';
import { listingJson } from './views.js';

/** `--create`: the fleet's options, for a breaker the store holds no record of. */
export const CREATE_OPTION = {
  create: {
    type: 'string',
    value: 'JSON',
    help: 'if the breaker has no record yet (it never failed), create it with these breaker options, the fleet\'s own, e.g. \'{"failMax":3,"timeout":20000}\' ({} for the defaults; "Infinity" for no limit, as --json writes it)',
  },
} as const satisfies Record<string, CommandOption>;

function parseCreate(text: string | undefined, command: Command): ConfigOptions | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, readNoLimit);
  } catch {
    throw new UsageError(
      `--create must be a JSON object of breaker options, got ${JSON.stringify(text)}`,
      command,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(
      `--create must be a JSON object of breaker options, got ${JSON.stringify(text)}`,
      command,
    );
  }
  if ((value as { failMax?: unknown }).failMax === null) {
    throw new UsageError(
      `--create: option failMax is a whole number, or "${NO_LIMIT}" for no limit, got null`,
      command,
    );
  }
  // Checked here, before Redis is read: a bad value is bad usage, not a failure of the action.
  try {
    createConfig('--create', { create: value });
  } catch (error) {
    const message = (error as Error).message.replace(/^--create: /, '');
    throw new UsageError(`--create: ${message}`, command);
  }
  return value as ConfigOptions;
}

/**
 * A command that sends one operator action: runs it, and says what changed in one line (or
 * prints `{ name, action, from, to, changed, version, breaker }` with `--json`).
 */
export function operatorCommand(
  command: Omit<Command, 'run' | 'args' | 'usesRedis'>,
  act: (
    store: RedisStore,
    name: string,
    create: ConfigOptions | undefined,
  ) => Promise<OperatorResult>,
  done: string,
): Command {
  const full: Command = {
    ...command,
    args: [{ name: 'NAME' }],
    usesRedis: true,
    async run({ args, values, options, out, store }) {
      const name = args[0] as string;
      const create = parseCreate(values.create as string | undefined, full);
      let result: OperatorResult;
      try {
        result = await act(await store(), name, create);
      } catch (error) {
        if (error instanceof BreakerNotFoundError && command.options?.create !== undefined) {
          throw new Error(
            `${error.message}; --create '{...}' with the fleet's breaker options creates it`,
          );
        }
        throw error;
      }
      const { breaker, from, changed } = result;
      if (options.json) {
        out.json({
          name,
          action: command.name,
          from,
          to: breaker.state,
          changed,
          version: breaker.version,
          breaker: listingJson(breaker),
        });
        return;
      }
      const shown = quoted(name);
      const to = out.style(breaker.state, breaker.state);
      if (!changed) {
        out.line(`${shown} is already ${to} (version ${breaker.version}): nothing written`);
        return;
      }
      const before = from === null ? 'no record' : out.style(from, from);
      out.line(
        `${shown} ${done} for the whole fleet: ${before} -> ${to} (version ${breaker.version})`,
      );
    },
  };
  return full;
}

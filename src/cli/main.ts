import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { checkName } from '../name.js';
import { type CliIO, type Command, UsageError } from './command.js';
import { COMMANDS } from './commands.js';
import { COMMON_OPTIONS, resolveCommonOptions } from './common-options.js';
import { type Connection, connect, parseTarget } from './connect.js';
import { Output } from './output.js';
import { commandUsage, generalUsage } from './usage.js';

/** Exit codes of `statebreaker`. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

/** The process's streams, environment and stop signals. */
export function processIO(): CliIO {
  // `statebreaker list | head -1`: a reader that went away is no error of ours.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    exit: (code) => {
      process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
    },
    untilStopped: () =>
      new Promise((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      }),
  };
}

const GENERAL = { version: { type: 'boolean', short: 'v' } } as const;

// Every command's options at once, so that options may come before or after the command; each
// is then checked against the command it was given to.
function parserOptions(): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { ...GENERAL };
  for (const source of [COMMON_OPTIONS, ...COMMANDS.map((command) => command.options ?? {})]) {
    for (const [name, option] of Object.entries(source)) {
      options[name] = name === 'help' ? { type: option.type, short: 'h' } : { type: option.type };
    }
  }
  return options;
}

function version(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

function isParseError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * `util.parseArgs`'s refusal said plainly, with the usage of the command `argv` names: its own
 * text speaks of `--` and positional arguments, which is not what went wrong.
 */
function parseUsageError(error: Error & { code: string }, argv: readonly string[]): UsageError {
  const { positionals } = parseArgs({
    args: [...argv],
    options: parserOptions(),
    allowPositionals: true,
    strict: false,
  });
  const named = positionals[0] === 'help' ? positionals[1] : positionals[0];
  const command = COMMANDS.find((candidate) => candidate.name === named);
  const option = /'(-{1,2}[^' ]+)/.exec(error.message)?.[1];
  if (option === undefined) return new UsageError(error.message, command);
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${option}`, command);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // A string option given none (or another option where its value goes), or a flag given one.
      return new UsageError(
        parserOptions()[option.replace(/^-+/, '')]?.type === 'string'
          ? `${option} needs a value`
          : `${option} takes no value`,
        command,
      );
    default:
      return new UsageError(error.message, command);
  }
}

function checkArguments(command: Command, args: readonly string[]): void {
  const required = command.args.filter((arg) => arg.optional !== true);
  const missing = required[args.length];
  if (missing !== undefined) {
    throw new UsageError(`${command.name} needs ${missing.name}`, command);
  }
  const variadic = command.args.some((arg) => arg.variadic === true);
  if (!variadic && args.length > command.args.length) {
    throw new UsageError(
      `${command.name} takes ${command.args.length === 0 ? 'no arguments' : command.args.map((arg) => arg.name).join(' ')}, got ${JSON.stringify(args[command.args.length])} too`,
      command,
    );
  }
  for (const arg of args) {
    try {
      checkName(arg, 'NAME');
    } catch (error) {
      throw new UsageError((error as Error).message, command);
    }
  }
}

/**
 * Runs `statebreaker` with `argv` (without node and the script) and resolves with its exit
 * code: 0 success, 1 a breaker that does not exist, a corrupt record or a Redis that does not
 * answer (one line on stderr), 2 bad usage (the reason, then the usage text, on stderr).
 */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const out = new Output(io);
  let command: Command | undefined;
  let connection: Connection | undefined;
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: parserOptions(),
      allowPositionals: true,
      strict: true,
    });
    // No option is `multiple`: every value is a string or a boolean.
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const { positionals } = parsed;
    if (values.version === true) {
      out.line(version());
      return EXIT.OK;
    }
    let [name, ...args] = positionals;
    if (name === 'help') {
      if (args[0] === undefined) {
        io.stdout.write(generalUsage());
        return EXIT.OK;
      }
      [name, ...args] = args;
      values.help = true;
    }
    if (name === undefined) {
      if (values.help === true) {
        io.stdout.write(generalUsage());
        return EXIT.OK;
      }
      throw new UsageError('missing COMMAND');
    }
    command = COMMANDS.find((candidate) => candidate.name === name);
    if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    if (values.help === true) {
      io.stdout.write(commandUsage(command));
      return EXIT.OK;
    }
    const own = command.options ?? {};
    for (const [option, value] of Object.entries(values)) {
      if (value !== undefined && !(option in COMMON_OPTIONS) && !(option in own)) {
        throw new UsageError(`--${option} is not an option of ${command.name}`, command);
      }
    }
    checkArguments(command, args);
    const options = resolveCommonOptions(values, io.env);
    if (command.usesRedis === true) parseTarget(options.redis, options.cluster);
    await command.run({
      args,
      options,
      values,
      out,
      io,
      store: async () => {
        connection ??= await connect(options);
        return connection.store;
      },
      connection: async () => {
        connection ??= await connect(options);
        return connection;
      },
    });
    return EXIT.OK;
  } catch (error) {
    const usage = isParseError(error) ? parseUsageError(error, argv) : error;
    if (usage instanceof UsageError) {
      const shown = usage.command ?? command;
      out.note(usage.message);
      io.stderr.write(`\n${shown === undefined ? generalUsage() : commandUsage(shown)}`);
      return EXIT.USAGE;
    }
    out.note(error instanceof Error ? error.message : String(error));
    return EXIT.FAILED;
  } finally {
    await connection?.close();
  }
}

import type { RedisStore } from '../stores/redis/index.js';
import type { CommonOptions } from './common-options.js';
import type { Connection } from './connect.js';
import type { Output } from './output.js';

/** Where the CLI reads and writes: the process's streams and environment, or a test's. */
export interface CliIO {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Settles when the user asks a long-running command to stop (SIGINT, SIGTERM). */
  untilStopped(): Promise<void>;
  /**
   * Ends the process with `code` once what was written is flushed: for a command whose
   * libraries keep connections open after they stop (the inspector server keeps a browser's).
   */
  exit?(code: number): void;
}

/** A positional argument of a command, as its usage line names it. */
export interface Argument {
  readonly name: string;
  readonly optional?: boolean;
  /** Takes every remaining argument. */
  readonly variadic?: boolean;
}

/** An option of one command, in `util.parseArgs` terms, with its help text. */
export interface CommandOption {
  readonly type: 'string' | 'boolean';
  /** What the value is, in the usage line, e.g. `JSON`. */
  readonly value?: string;
  readonly help: string;
}

/** What a command gets to run with. */
export interface CommandContext {
  /** The positional arguments, checked against the command's `args`. */
  readonly args: readonly string[];
  /** The options every command shares. */
  readonly options: CommonOptions;
  /** The values of the command's own options. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly out: Output;
  readonly io: CliIO;
  /** The store on the Redis the options name, connected on first use and closed after the command. */
  store(): Promise<RedisStore>;
  /** The connection the store is on (connected on first use, as `store()`). */
  connection(): Promise<Connection>;
}

/**
 * One `statebreaker` command. Adding a command is a file that exports one of these, listed in
 * `commands.ts`: the dispatcher, the usage text and `--help` come from its fields.
 */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** More lines for `statebreaker COMMAND --help`. */
  readonly description?: string;
  readonly args: readonly Argument[];
  readonly options?: Readonly<Record<string, CommandOption>>;
  /** Whether the command talks to Redis (the connection options then apply). */
  readonly usesRedis?: boolean;
  /** Runs the command; a thrown error is reported in one line with exit code 1. */
  run(context: CommandContext): Promise<void>;
}

/** Bad usage: reported with the usage text and exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command whose usage to show; `undefined` for the general usage. */
  readonly command: Command | undefined;

  constructor(message: string, command?: Command) {
    super(message);
    this.command = command;
  }
}

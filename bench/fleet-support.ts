/**
 * What the fleet benchmarks share (`fleet.ts`, `followers.ts`): reading a redis-server's INFO
 * counters, percentiles, bounded waits, and the `fleet-child.ts` processes they drive over IPC.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { waitFor } from '../test/support/redis-wait.js';
import type { FleetChildOptions, FromFleetChild, ToFleetChild } from './fleet-child.js';
import { formatNumber } from './harness.js';

const CHILD = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const ms = (value: number) =>
  Number.isFinite(value) ? `${formatNumber(value, 1)} ms` : '–';
export const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/** The nearest-rank percentile `p` (0-100) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
  );
}

/** Waits for `condition` within `boundMs`, or throws saying what did not happen. */
export async function must(
  condition: () => boolean | Promise<boolean>,
  boundMs: number,
  what: string,
): Promise<void> {
  if (!(await waitFor(condition, boundMs))) throw new Error(`bench: ${what} within ${boundMs} ms`);
}

/** The `name:value` fields of an INFO reply, numbers where they parse as one. */
export async function info(admin: Redis, section: string): Promise<Map<string, number>> {
  const fields = new Map<string, number>();
  for (const line of (await admin.info(section)).split('\n')) {
    const match = /^(\w+):([-\d.]+)\s*$/.exec(line.trim());
    if (match) fields.set(match[1] as string, Number(match[2]));
  }
  return fields;
}

// Commands an observer sends to read the figures, not the fleet's.
const OBSERVER_COMMANDS = new Set(['info', 'client']);

/**
 * Calls per command since the server started, from INFO commandstats (INFO and CLIENT, which
 * the benchmark itself sends, left out).
 */
export async function commandCounts(admin: Redis): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line.trim());
    if (match && !OBSERVER_COMMANDS.has(match[1] as string)) {
      counts.set(match[1] as string, Number(match[2]));
    }
  }
  return counts;
}

export function delta(
  before: Map<string, number>,
  after: Map<string, number>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [command, calls] of after) {
    const d = calls - (before.get(command) ?? 0);
    if (d > 0) out.set(command, d);
  }
  return out;
}

/** The calls of `commands` in `counts`, added up. */
export const of = (counts: Map<string, number>, ...commands: string[]) =>
  sum(commands.map((c) => counts.get(c) ?? 0));

/** `command n, …`, most called first. */
export const breakdown = (counts: Map<string, number>) =>
  [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([command, n]) => `${command} ${formatNumber(n)}`)
    .join(', ');

export async function totalCommands(admin: Redis): Promise<number> {
  const match = /total_commands_processed:(\d+)/.exec(await admin.info('stats'));
  return Number(match?.[1] ?? Number.NaN);
}

/** One `fleet-child.ts` process and the messages it sent. */
export class Child {
  readonly process: ChildProcess;
  readonly messages: FromFleetChild[] = [];
  exited = false;

  constructor(options: FleetChildOptions, execArgv: readonly string[] = []) {
    this.process = fork(CHILD, [JSON.stringify(options)], {
      execArgv: [...execArgv, '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (message: FromFleetChild) => this.messages.push(message));
    this.process.on('exit', () => {
      this.exited = true;
    });
  }

  send(message: ToFleetChild): void {
    if (!this.exited && this.process.connected) this.process.send(message);
  }

  /** The next message of `type` after the `from`-th, within the bound. */
  async next<T extends FromFleetChild['type']>(
    type: T,
    boundMs: number,
    from = 0,
  ): Promise<Extract<FromFleetChild, { type: T }>> {
    const find = () => this.messages.slice(from).find((m) => m.type === type);
    await must(() => find() !== undefined || this.exited, boundMs, `no ${type} from a child`);
    const found = find();
    if (found === undefined) throw new Error(`bench: a child exited before sending ${type}`);
    return found as Extract<FromFleetChild, { type: T }>;
  }

  /** Sends `message` and waits for the answer of `type` it asks for. */
  async ask<T extends FromFleetChild['type']>(
    message: ToFleetChild,
    type: T,
    boundMs = 30_000,
  ): Promise<Extract<FromFleetChild, { type: T }>> {
    const from = this.messages.length;
    this.send(message);
    return this.next(type, boundMs, from);
  }

  async count(): Promise<Readonly<Record<string, number>>> {
    return (await this.ask({ type: 'count' }, 'count')).states;
  }

  async exit(): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'exit' });
    if (!(await waitFor(() => this.exited, 10_000))) this.process.kill('SIGKILL');
  }
}

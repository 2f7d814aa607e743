import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository's root: examples run from there, as `npx tsx examples/...` does. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How an example's process ended. */
export interface ExampleRun {
  /** False when the watchdog had to kill it: it did not end by itself. */
  readonly exitedByItself: boolean;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** `stdout` split into lines. */
  readonly lines: readonly string[];
}

/** What {@link runExample} runs a program with. */
export interface ExampleOptions {
  /** Arguments after the file. */
  readonly args?: readonly string[];
  /** Variables on top of this process's environment, from which REDIS_URL is removed. */
  readonly env?: Readonly<Record<string, string>>;
  /** Bounds a hang, not a speed: the process is killed after it. Default 55 s. */
  readonly boundMs?: number;
  /** Hears each line of stdout as it comes, with a way to signal the process (SIGTERM, say). */
  readonly onLine?: (line: string, signal: (signal: NodeJS.Signals) => void) => void;
}

/**
 * Runs `file` (relative to the root) with node and tsx, as a user runs an example, and resolves
 * when the process ends. REDIS_URL is never inherited: an example reaches no Redis the test did
 * not name.
 */
export function runExample(file: string, options: ExampleOptions = {}): Promise<ExampleRun> {
  const { args = [], env = {}, boundMs = 55_000, onLine } = options;
  const { REDIS_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let heard = 0;
  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (onLine === undefined) return;
    // Only whole lines: a chunk may end in the middle of one.
    const end = stdout.lastIndexOf('\n') + 1;
    for (const line of stdout.slice(heard, end).split('\n')) if (line !== '') onLine(line, signal);
    heard = Math.max(heard, end);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let killed = false;
  const watchdog = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, boundMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(watchdog);
      const lines = stdout.split('\n').filter((line) => line !== '');
      resolve({ exitedByItself: !killed, code, signal, stdout, stderr, lines });
    });
  });
}

/**
 * The index in `lines` of each pattern, each found after the previous one; throws naming the
 * first pattern not found in order, with the output, so a failure shows what the example said.
 */
export function inOrder(
  lines: readonly string[],
  patterns: readonly (string | RegExp)[],
): number[] {
  const found: number[] = [];
  let from = 0;
  for (const pattern of patterns) {
    const index = lines.findIndex(
      (line, i) =>
        i >= from && (typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line)),
    );
    if (index < 0) {
      throw new Error(`no line ${String(pattern)} after line ${from} in:\n${lines.join('\n')}`);
    }
    found.push(index);
    from = index + 1;
  }
  return found;
}

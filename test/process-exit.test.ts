import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/open-breaker.ts', import.meta.url));
// Generous: this bounds a hang, it does not measure speed.
const WATCHDOG_MS = 15_000;

interface Outcome {
  exitedByItself: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  report: { state: string; retryAfterMs: number; keepAlive: string[] } | undefined;
  stderr: string;
}

/**
 * Runs the fixture and waits for it to exit, or kills it when the watchdog fires (or, with
 * `killWhenReported`, as soon as it has reported).
 */
function runFixture(args: string[], killWhenReported = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const kill = () => {
      killed = true;
      child.kill('SIGKILL');
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (killWhenReported && stdout.endsWith('}')) kill();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const watchdog = setTimeout(kill, WATCHDOG_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      let report: Outcome['report'];
      try {
        report = JSON.parse(stdout) as Outcome['report'];
      } catch {
        report = undefined;
      }
      resolve({ exitedByItself: !killed, code, signal, report, stderr });
    });
  });
}

describe('a process holding an open breaker', () => {
  it(
    'exits by itself with code 0: no breaker timer keeps it alive',
    async () => {
      const outcome = await runFixture([]);
      expect(outcome.stderr).toBe('');
      // The breaker did trip on the system clock, so its 60 s timer was armed.
      expect(outcome.report?.state).toBe('open');
      expect(outcome.report?.retryAfterMs).toBeGreaterThan(0);
      expect(outcome.report?.keepAlive).not.toContain('Timeout');
      expect(outcome.exitedByItself).toBe(true);
      expect(outcome.code).toBe(0);
      expect(outcome.signal).toBeNull();
    },
    WATCHDOG_MS + 10_000,
  );

  it(
    'control: with a clock whose timers are ref’d, the same program is kept alive',
    async () => {
      // Shows the first test can fail: the same arrangement holds live timers when the clock
      // does not unref them. The child is killed once it has reported.
      const outcome = await runFixture(['ref'], true);
      expect(outcome.report?.state).toBe('open');
      expect(outcome.report?.keepAlive).toContain('Timeout');
    },
    WATCHDOG_MS + 10_000,
  );
});

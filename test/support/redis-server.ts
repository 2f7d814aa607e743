import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const READY = /ready to accept connections/i;
const START_BOUND_MS = 10_000;

/**
 * A redis-server of the test's own, on a unix socket in a temp dir (no TCP port), with no
 * persistence. Fault tests kill, pause, resume or restart it.
 */
export class RedisServer {
  /** The unix socket: connect with `new Redis({ path })`. */
  readonly path: string;
  readonly #dir: string;
  #process: ChildProcess | null = null;

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, 'redis.sock');
  }

  /** Starts a server and resolves once it accepts connections. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(mkdtempSync(join(tmpdir(), 'statebreaker-redis-')));
    try {
      await server.#spawn();
    } catch (error) {
      server.#cleanup();
      throw error;
    }
    return server;
  }

  /** The server's process id. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Stops the server (SIGTERM) and removes its temp dir. */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
    this.#cleanup();
  }

  /** Kills the server with SIGKILL, as a crash would; `restart()` brings a fresh one back. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  /** Unfreezes a paused server (SIGCONT). */
  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Kills the server and starts a new, empty one on the same socket. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  #spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--unixsocket',
        this.path,
        '--unixsocketperm',
        '700',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.#dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#process = child;
    return new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`redis-server did not start within ${START_BOUND_MS} ms:\n${output}`));
      }, START_BOUND_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (READY.test(output)) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    await exited;
  }

  #cleanup(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

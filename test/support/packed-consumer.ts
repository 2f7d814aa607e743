import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// A project of a user's, in a temp dir, that installs the package from the tarball `npm pack`
// makes: what it can import is what package.json's `files` and `exports` publish, not the
// vitest aliases the other tests use.

const run = promisify(execFile);

/** The repository's root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Bounds a hang of npm, tsc or a consumer; none of them measures speed.
const BOUND_MS = 120_000;

/** What a command printed, and its exit code (0: success). */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` in `cwd` and resolves with its output, whether it succeeded or not. */
export async function runIn(
  cwd: string,
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(command, args, {
      cwd,
      timeout: BOUND_MS,
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const {
      code,
      stdout = '',
      stderr = '',
    } = error as {
      code?: number | string;
      stdout?: string;
      stderr?: string;
    };
    return {
      code: typeof code === 'number' ? code : 1,
      stdout,
      stderr: stderr === '' ? String(error) : stderr,
    };
  }
}

/** Fails with the command's output when it did not succeed. */
export function succeeded(ran: Ran, what: string): Ran {
  if (ran.code !== 0) throw new Error(`${what} failed (${ran.code}):\n${ran.stdout}${ran.stderr}`);
  return ran;
}

/** One file of the tarball as `npm pack --json` lists it. */
export interface PackedFile {
  readonly path: string;
}

/** Builds the package (the `prepack` script) and packs it into `dir`; returns the tarball's path. */
export async function pack(dir: string): Promise<{ tarball: string; files: PackedFile[] }> {
  const packed = succeeded(
    await runIn(ROOT, 'npm', ['pack', '--json', '--pack-destination', dir]),
    'npm pack',
  );
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
    { filename: string; files: PackedFile[] },
  ];
  return { tarball: join(dir, info.filename), files: info.files };
}

/**
 * A consumer project: an ES module package with nothing installed yet, that depends on
 * `dependencies` (name to range) once it installs.
 */
export class Consumer {
  readonly dir: string;

  constructor(dependencies: Record<string, string> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'statebreaker-consumer-'));
    const manifest = { name: 'consumer', private: true, type: 'module', dependencies };
    writeFileSync(join(this.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  }

  /**
   * `npm install` as a user runs it, from the npm cache that `npm ci` filled when it can, and
   * without the flags that would let a peer conflict through, even when the test run inherited
   * them (`npm test --legacy-peer-deps` passes them on as `npm_config_*`).
   */
  async install(...specs: string[]): Promise<void> {
    succeeded(
      await runIn(
        this.dir,
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', ...specs],
        { npm_config_legacy_peer_deps: 'false', npm_config_force: 'false' },
      ),
      `npm install ${specs.join(' ')}`,
    );
  }

  /** The version of a package the consumer has installed. */
  version(name: string): string {
    const path = join(this.dir, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  }

  write(path: string, text: string): void {
    writeFileSync(join(this.dir, path), text);
  }

  /**
   * Runs `node` (the one running the tests, or the binary `node`) on a script of the consumer's
   * (or `-e` code) with the given flags.
   */
  node(args: readonly string[], env?: NodeJS.ProcessEnv, node = process.execPath): Promise<Ran> {
    return runIn(this.dir, node, args, env);
  }

  /** Runs the repository's TypeScript compiler on a tsconfig of the consumer's. */
  tsc(project: string, ...flags: string[]): Promise<Ran> {
    return runIn(this.dir, process.execPath, [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      project,
      ...flags,
    ]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

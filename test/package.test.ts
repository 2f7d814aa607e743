import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumerClient, nodeBinaries, runConsumerFleet } from './support/consumer-fleet.js';
import {
  Consumer,
  type PackedFile,
  pack,
  type Ran,
  ROOT,
  succeeded,
} from './support/packed-consumer.js';
import { documentationFiles, typeScriptBlocks } from './support/readme-blocks.js';
import { RedisServer } from './support/redis-server.js';

// The package as a user installs it: `npm pack` (which builds it), the tarball installed into a
// project of its own, every entry point imported from there, the TypeScript of the README and
// of docs/ compiled against what was installed under `module: nodenext` and
// `moduleResolution: bundler`, and consumers in ES module TypeScript and CommonJS run. One pack
// and one project per run.

const SETUP_BOUND_MS = 180_000;
// The Node binaries the package runs on: this one, and Node 22 and 24 from the registry.
const majors = nodeBinaries();
const MISSING_GRAPH =
  'statebreaker/testing needs the optional peer @xstate/graph: npm install -D @xstate/graph';

let packDir = '';
let files: PackedFile[] = [];
let tarball = '';
let consumer: Consumer;
let server: RedisServer | undefined;

beforeAll(async () => {
  packDir = join(tmpdir(), `statebreaker-pack-${process.pid}`);
  mkdirSync(packDir, { recursive: true });
  ({ tarball, files } = await pack(packDir));
  consumer = new Consumer();
  // Only the package: its dependencies come with it, its optional peers do not.
  await consumer.install(tarball);
}, SETUP_BOUND_MS);

afterAll(async () => {
  await server?.stop();
  consumer?.remove();
  if (packDir !== '') rmSync(packDir, { recursive: true, force: true });
}, SETUP_BOUND_MS);

/** The package's entry points as a user imports them, from its `exports`. */
function entryPoints(): string[] {
  const path = join(consumer.dir, 'node_modules', 'statebreaker', 'package.json');
  const { exports } = JSON.parse(readFileSync(path, 'utf8')) as {
    exports: Record<string, unknown>;
  };
  return Object.keys(exports)
    .filter((key) => !key.includes('*') && !key.endsWith('.json'))
    .map((key) => (key === '.' ? 'statebreaker' : `statebreaker/${key.slice(2)}`));
}

/** Every file under `dir`, as paths relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    return entry.isDirectory() ? walk(dir, path) : [path];
  });
}

describe('the tarball', () => {
  it('holds the built entry points, their Lua scripts, LICENSE and README; no sources, no tests', () => {
    const paths = files.map((file) => file.path);
    for (const path of [
      'package.json',
      'LICENSE',
      'README.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/stores/redis/index.js',
      'dist/stores/redis/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/stores/lua/compareAndSet-8.lua',
    ]) {
      expect(paths).toContain(path);
    }
    expect(paths.filter((path) => /^(src|test|bench|scripts|demo)\//.test(path))).toEqual([]);
  });

  it('ships source maps that carry their sources, so a stack trace shows src/*.ts lines', async () => {
    const installed = join(consumer.dir, 'node_modules', 'statebreaker');
    const maps = walk(installed).filter((path) => path.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const path of maps) {
      const map = JSON.parse(readFileSync(join(installed, path), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      expect(map.sourcesContent?.length, path).toBe(map.sources.length);
      expect(map.sourcesContent?.every((text) => typeof text === 'string' && text !== '')).toBe(
        true,
      );
    }
    // An empty name throws from src/name.ts: node maps the frame back and quotes the line.
    const { stderr } = await consumer.node([
      '--enable-source-maps',
      '--input-type=module',
      '-e',
      "import { CircuitBreaker } from 'statebreaker'; new CircuitBreaker('');",
    ]);
    expect(stderr).toMatch(/node_modules\/statebreaker\/src\/name\.ts:\d+/);
    expect(stderr).toMatch(/throw new RangeError/);
  });

  it('declares no @internal member', () => {
    const installed = join(consumer.dir, 'node_modules', 'statebreaker');
    const declarations = walk(installed).filter((path) => path.endsWith('.d.ts'));
    expect(declarations.length).toBeGreaterThan(10);
    const internal = declarations.filter((path) =>
      readFileSync(join(installed, path), 'utf8').includes('@internal'),
    );
    expect(internal).toEqual([]);
  });
});

/** Code that loads every entry point with `load` and prints what each gave, as JSON. */
const probe = (load: string) => `
    const results = {};
    for (const specifier of ${JSON.stringify(entryPoints())}) {
      try { await ${load}(specifier); results[specifier] = 'ok'; }
      catch (error) { results[specifier] = error.message; }
    }
    console.log(JSON.stringify(results));`;

/** What the probe prints where @xstate/graph is not installed. */
const expected = () =>
  Object.fromEntries(
    entryPoints().map((entry) => [entry, entry === 'statebreaker/testing' ? MISSING_GRAPH : 'ok']),
  );

describe('installed without its optional peers (ioredis, @xstate/graph, prom-client, ...)', () => {
  it('imports every entry point but statebreaker/testing, whose error names the missing peer', async () => {
    expect(entryPoints()).toEqual(
      expect.arrayContaining([
        'statebreaker',
        'statebreaker/redis',
        'statebreaker/store',
        'statebreaker/testing',
      ]),
    );
    const esm = succeeded(
      await consumer.node(['--input-type=module', '-e', probe('import')]),
      'import',
    );
    expect(JSON.parse(esm.stdout)).toEqual(expected());
  });

  it('finds a Node of each major the package supports: 20, 22 and 24', () => {
    expect(majors.map((binary) => binary.major)).toEqual([20, 22, 24]);
  });

  it.each(majors)('imports every entry point on Node $major as well', async ({ major, path }) => {
    const esm = succeeded(
      await consumer.node(
        ['--input-type=module', '-e', `${probe('import')}\nconsole.log(process.versions.node);`],
        {},
        path,
      ),
      `import on Node ${major}`,
    );
    const [results, version] = esm.stdout.trim().split('\n');
    expect(version?.split('.')[0]).toBe(String(major));
    expect(JSON.parse(results as string)).toEqual(expected());
  });

  const requireModule = (process.features as { require_module?: boolean }).require_module === true;
  it.runIf(requireModule)('requires them from CommonJS the same way', async () => {
    const cjs = succeeded(
      await consumer.node(['-e', `(async () => {${probe('require')}})()`]),
      'require',
    );
    expect(JSON.parse(cjs.stdout)).toEqual(expected());
  });
});

describe('the dashboard as installed', () => {
  // The page files are not TypeScript: the build copies them beside the module, and the
  // tarball must hold them.
  const serve = `import { MemoryStore } from 'statebreaker';
    import { startDashboard } from 'statebreaker/dashboard';
    const dashboard = await startDashboard({ store: new MemoryStore(), port: 0 });
    const get = async (path) => {
      const response = await fetch(new URL(path, dashboard.url));
      const text = await response.text();
      return { status: response.status, type: response.headers.get('content-type'), text };
    };
    const page = await get('./');
    const script = await get('assets/dashboard.js');
    const actions = await get('assets/actions.js');
    const style = await get('assets/dashboard.css');
    await dashboard.close();
    console.log(JSON.stringify({
      page: [page.status, page.type, page.text.includes('data-state="halfOpen.probing"')],
      script: [script.status, script.type, script.text.includes('EventSource')],
      actions: [actions.status, actions.type, actions.text.includes('renderActions')],
      style: [style.status, style.type, style.text.includes('.tile')],
    }));`;

  it('serves its page, script and style from the installed package', async () => {
    const ran = succeeded(
      await consumer.node(['--input-type=module', '-e', serve]),
      'the dashboard',
    );
    expect(JSON.parse(ran.stdout)).toEqual({
      page: [200, 'text/html; charset=utf-8', true],
      script: [200, 'text/javascript; charset=utf-8', true],
      actions: [200, 'text/javascript; charset=utf-8', true],
      style: [200, 'text/css; charset=utf-8', true],
    });
  });
});

describe('installed with the peers a user adds', () => {
  // The SDKs the LLM pages import, at the versions the repository tests against (its
  // devDependencies), and node-redis for its page. Their own declarations are not ours to check
  // (@ai-sdk/provider's need @types/json-schema, which it does not install), so the blocks that
  // import them compile in a program of their own that skips library checks.
  const sdks = [
    'ai',
    '@ai-sdk/openai',
    '@ai-sdk/anthropic',
    'openai',
    '@anthropic-ai/sdk',
    'redis',
  ];
  const importsSdk = new RegExp(`from '(${sdks.join('|')})(/[^']*)?'`);
  // Every ```ts block of the README and of docs/, each compiled as a module of its own.
  const blocks = documentationFiles(ROOT).flatMap((file) =>
    typeScriptBlocks(readFileSync(join(ROOT, file), 'utf8'), file).map((block) => {
      const dir = importsSdk.test(block.code) ? 'sdk-blocks' : 'blocks';
      const name = file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');
      return { ...block, module: `${dir}/${name}-line-${block.line}.ts` };
    }),
  );
  const compiled = blocks.filter((block) => block.notCompiled === undefined);
  const devDependencies = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    }
  ).devDependencies;
  // The testing examples import vitest: the repository's, as a test runner is not part of what
  // this package installs.
  const paths = { vitest: [join(ROOT, 'node_modules', 'vitest', 'dist', 'index.d.ts')] };
  const strict = { strict: true, skipLibCheck: false, target: 'es2022', types: ['node'], paths };

  beforeAll(async () => {
    await consumer.install(
      '@xstate/graph@3',
      'ioredis@5',
      'ioredis-mock@8',
      '@types/ioredis-mock@8',
      '@statelyai/inspect@0.7',
      'prom-client@15',
      '@opentelemetry/api@1.10',
      '@types/node@20',
      ...sdks.map((name) => `${name}@${devDependencies[name]}`),
    );
    mkdirSync(join(consumer.dir, 'blocks'));
    mkdirSync(join(consumer.dir, 'sdk-blocks'));
    for (const block of compiled) {
      const isModule = /^(import|export) /m.test(block.code);
      consumer.write(block.module, isModule ? block.code : `${block.code}export {};\n`);
    }
    const fixture = (name: string) =>
      readFileSync(join(ROOT, 'test', 'fixtures', 'consumer', name), 'utf8');
    consumer.write('smoke.ts', fixture('smoke.ts'));
    consumer.write('smoke.cts', fixture('smoke.cts'));
    consumer.write(
      'entries.ts',
      entryPoints()
        .map((entry, i) => `export * as entry${i} from '${entry}';\n`)
        .join(''),
    );
    const config = (compilerOptions: object, include: string[]) =>
      `${JSON.stringify({ compilerOptions, include }, null, 2)}\n`;
    consumer.write(
      'tsconfig.nodenext.json',
      config(
        {
          ...strict,
          module: 'nodenext',
          verbatimModuleSyntax: true,
          outDir: 'out',
          rootDir: '.',
          noEmitOnError: true,
        },
        ['blocks/*.ts', 'entries.ts', 'smoke.ts', 'smoke.cts'],
      ),
    );
    // The libraries' declarations (ours included) are checked once, under nodenext, and again
    // on their own against another xstate; here what resolution under bundler changes, with
    // the strictest flags users add (which xstate's own declarations do not pass).
    consumer.write(
      'tsconfig.bundler.json',
      config(
        {
          ...strict,
          skipLibCheck: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          module: 'esnext',
          moduleResolution: 'bundler',
          noEmit: true,
        },
        ['blocks/*.ts', 'sdk-blocks/*.ts', 'entries.ts', 'smoke.ts'],
      ),
    );
    consumer.write(
      'tsconfig.sdks.json',
      config({ ...strict, skipLibCheck: true, module: 'nodenext', noEmit: true }, [
        'sdk-blocks/*.ts',
      ]),
    );
    consumer.write(
      'tsconfig.declarations.json',
      config({ ...strict, module: 'nodenext', noEmit: true }, ['entries.ts']),
    );
    server = await RedisServer.start();
  }, SETUP_BOUND_MS);

  it('the README and docs/ mark few TypeScript blocks as fragments, each with a reason', () => {
    const from = (prefix: string) => compiled.filter((block) => block.module.includes(prefix));
    expect(from('blocks/README-')).not.toEqual([]);
    expect(from('blocks/docs-')).not.toEqual([]);
    expect(from('sdk-blocks/')).not.toEqual([]);
    expect(compiled.length).toBeGreaterThanOrEqual(20);
    expect(blocks.length - compiled.length).toBeLessThanOrEqual(1);
  });

  // Bounds on a compile of a few dozen files on a loaded machine, not a measure of its speed.
  const COMPILE_BOUND_MS = 120_000;

  // The nodenext program emits out/, which the consumers below run.
  it.each([
    [
      'every TypeScript block of the README and docs/, and the consumers, under module nodenext',
      'tsconfig.nodenext.json',
    ],
    [
      'the blocks that import an LLM SDK or node-redis under module nodenext too',
      'tsconfig.sdks.json',
    ],
    ['them all under moduleResolution bundler', 'tsconfig.bundler.json'],
  ])('compiles %s', { timeout: COMPILE_BOUND_MS }, async (_, project) => {
    const ran = await consumer.tsc(project);
    expect(ran.stdout + ran.stderr).toBe('');
    expect(ran.code).toBe(0);
  });

  const runSmoke = async () => {
    const ran = succeeded(
      await consumer.node(['out/smoke.js'], { REDIS_SOCKET: server?.path ?? '' }),
      'the ES module consumer',
    );
    return JSON.parse(ran.stdout) as unknown;
  };
  const smokeResult = { local: 'open', rejected: true, remote: 'open', fromMock: 42, paths: 5 };

  it('runs the ES module consumer: a local breaker, two on a redis-server, ioredis-mock, paths', async () => {
    expect(await runSmoke()).toEqual(smokeResult);
  });

  const requireModule = (process.features as { require_module?: boolean }).require_module === true;
  it.runIf(requireModule)('runs the CommonJS consumer', async () => {
    const ran = succeeded(await consumer.node(['out/smoke.cjs']), 'the CommonJS consumer');
    expect(JSON.parse(ran.stdout)).toEqual({
      value: 42,
      state: 'open',
      rejected: true,
      RedisStore: 'function',
      paths: true,
      llm: 'ignored',
      listed: ['commonjs'],
      successfulCalls: 1,
    });
  });

  it('on a Node without require(esm), the CommonJS consumer gets the error that names the cause', async () => {
    // --no-experimental-require-module makes this Node behave as Node before 20.19: the package
    // is found (it is exported to require too), and the error says it is an ES module.
    const flags = requireModule ? ['--no-experimental-require-module'] : [];
    const { code, stdout, stderr } = await consumer.node([...flags, 'out/smoke.cjs']);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('ERR_REQUIRE_ESM');
    expect(stderr).not.toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('runs on the newest and the lowest xstate 5 it accepts', { timeout: 120_000 }, async () => {
    // The install above took the newest xstate that ^5.33.0 allows.
    const newest = consumer.version('xstate');
    expect(newest).toMatch(/^5\.(3[3-9]|[4-9]\d)\./);
    expect(await runSmoke()).toEqual(smokeResult);
    await consumer.install('xstate@5.33.0');
    expect(consumer.version('xstate')).toBe('5.33.0');
    const typed = await consumer.tsc('tsconfig.declarations.json');
    expect(typed.stdout + typed.stderr).toBe('');
    expect(await runSmoke()).toEqual(smokeResult);
  });
});

describe('installed without flags beside the Redis client a project already uses', () => {
  // What `npm install statebreaker` meets in a project that depends on a client already: a peer
  // range that leaves a major out fails with ERESOLVE. Two projects hold every client major
  // between them (one install each, side by side); each client then runs a fleet of two
  // processes that share one breaker on a redis-server.
  const dependencies = (major: string) => ({
    ioredis: `^${major}.0.0`,
    redis: `^${major}.0.0`,
    iovalkey: '^0.4.0',
    '@types/node': '^20.0.0',
  });
  // Made in beforeAll, so that a run that skips these tests leaves no directory behind.
  const projects = {} as Record<5 | 6, Consumer>;
  const fleets: { client: ConsumerClient; project: 5 | 6; major: string }[] = [
    { client: 'ioredis', project: 5, major: '5' },
    { client: 'ioredis', project: 6, major: '6' },
    { client: 'redis', project: 5, major: '5' },
    { client: 'redis', project: 6, major: '6' },
    { client: 'iovalkey', project: 5, major: '0' },
  ];
  let fleetServer: RedisServer | undefined;
  let fleetRun = 0;
  const compiled = new Map<Consumer, Ran>();

  beforeAll(async () => {
    const fixture = readFileSync(join(ROOT, 'test', 'fixtures', 'consumer', 'fleet.ts'), 'utf8');
    const tsconfig = {
      compilerOptions: {
        strict: true,
        skipLibCheck: true,
        target: 'es2022',
        types: ['node'],
        module: 'nodenext',
        outDir: 'out',
      },
      include: ['fleet.ts'],
    };
    const began = Date.now();
    const took: string[] = [];
    projects[5] = new Consumer(dependencies('5'));
    projects[6] = new Consumer(dependencies('6'));
    const [started] = await Promise.all([
      RedisServer.start(),
      ...Object.entries(projects).map(async ([major, project]) => {
        await project.install(tarball);
        const installed = Date.now();
        project.write('fleet.ts', fixture);
        project.write('tsconfig.json', `${JSON.stringify(tsconfig, null, 2)}\n`);
        // Emitted even with type errors, which a test of their own reports. node-redis's types
        // cost a few seconds of checking: checked with the newest majors (iovalkey included);
        // ioredis 5's are checked above, node-redis 5's by the repository's own typecheck.
        const check = major === '6' ? [] : ['--noCheck'];
        compiled.set(project, await project.tsc('tsconfig.json', ...check));
        took.push(
          `clients ${major}: installed in ${installed - began} ms, compiled in ${Date.now() - installed} ms`,
        );
      }),
    ]);
    fleetServer = started;
    console.log(took.join('; '));
  }, SETUP_BOUND_MS);

  afterAll(async () => {
    await fleetServer?.stop();
    for (const project of Object.values(projects)) project.remove();
  });

  const fleet = (project: 5 | 6, clients: [ConsumerClient, ConsumerClient], node?: string) =>
    runConsumerFleet({
      dir: projects[project].dir,
      socket: fleetServer?.path ?? '',
      name: `fleet ${process.pid} ${++fleetRun}`,
      clients,
      ...(node === undefined ? {} : { node }),
    });
  const tripSeen = {
    tripper: { state: 'open' },
    follower: { state: 'open', outcome: 'rejected', called: false },
  };

  it("type-checks `new RedisStore(client)` and a Cluster's store with ioredis 6's, node-redis 6's and iovalkey's own types", () => {
    for (const project of Object.values(projects)) {
      const ran = compiled.get(project);
      expect(ran?.stdout + (ran?.stderr ?? '')).toBe('');
    }
  });

  it.each(fleets)(
    'installs beside $client $major, and a trip in one process rejects in the other',
    async ({ client, project, major }) => {
      expect(projects[project].version(client).split('.')[0]).toBe(major);
      expect(await fleet(project, [client, client])).toEqual(tripSeen);
    },
  );

  it.each(majors)(
    'on Node $major, a trip on ioredis 6 rejects in a process on node-redis 6',
    async ({ path }) => {
      expect(await fleet(6, ['ioredis', 'redis'], path)).toEqual(tripSeen);
    },
  );
});

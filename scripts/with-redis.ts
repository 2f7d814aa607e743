// Runs a program with REDIS_URL set: as given, or, when it is unset, the unix socket of a
// redis-server of its own in a temp dir, stopped and removed when the program ends. For
// `npm run example:fleet`, so that the example needs no Redis set up beforehand.
//
//   tsx scripts/with-redis.ts <program.ts> [arguments...]
import { spawn } from 'node:child_process';
import { RedisServer } from '../test/support/redis-server.js';

const [program, ...args] = process.argv.slice(2);
if (program === undefined) throw new Error('usage: tsx scripts/with-redis.ts <program> [args...]');

async function startRedis(): Promise<RedisServer | undefined> {
  try {
    return await RedisServer.start();
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    console.error(
      missing
        ? 'redis-server is not on PATH: install Redis (e.g. apt install redis-server, brew install redis), or set REDIS_URL to a Redis of yours.'
        : `redis-server did not start: ${error instanceof Error ? error.message : String(error)}`,
    );
    return undefined;
  }
}

const server = process.env.REDIS_URL === undefined ? await startRedis() : undefined;
if (process.env.REDIS_URL === undefined && server === undefined) {
  process.exitCode = 1;
} else {
  const REDIS_URL = server?.path ?? (process.env.REDIS_URL as string);
  if (server !== undefined) console.log(`[with-redis] a redis-server of its own on ${REDIS_URL}`);
  // Ctrl-C reaches the program too; this process waits for it to end, then cleans up.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  const child = spawn(process.execPath, [...process.execArgv, program, ...args], {
    env: { ...process.env, REDIS_URL },
    stdio: 'inherit',
  });
  const code = await new Promise<number>((resolve) =>
    child.once('exit', (exitCode) => resolve(exitCode ?? 1)),
  );
  process.off('SIGINT', ignore);
  await server?.stop();
  process.exitCode = code;
}

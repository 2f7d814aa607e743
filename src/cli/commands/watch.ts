import { performance } from 'node:perf_hooks';
import { watchBreakers } from '../../admin/watch.js';
import type { Command } from '../command.js';
import { escapeText, formatDuration, formatTime, quoted } from '../output.js';

export const watch: Command = {
  name: 'watch',
  summary: 'one line per transition, live, from the change feed',
  description:
    'Follows every breaker under the prefix (or the NAMEs given) and prints one line per change of state, whoever made it, until interrupted (Ctrl-C, SIGTERM). With --json, one JSON object per line.',
  args: [{ name: 'NAME', optional: true, variadic: true }],
  usesRedis: true,
  async run({ args, options, out, store, connection, io }) {
    const redisStore = await store();
    // A change made while Redis was away is not heard when it is made: the operator is told of
    // the gap, and of what the watch does when Redis is back.
    let lostAt: number | undefined;
    const stopLink = (await connection()).onLinkChange((up) => {
      if (!up) {
        lostAt = performance.now();
        out.note(
          `lost the connection to Redis at ${formatTime(Date.now())}: no change is heard until it is back`,
        );
      } else if (lostAt !== undefined) {
        const away = formatDuration(performance.now() - lostAt);
        lostAt = undefined;
        out.note(
          `Redis is back after ${away}: every breaker is read again and a change made meanwhile is printed now (a breaker that changed more than once meanwhile shows only its last change)`,
        );
      }
    });
    const stopped = io.untilStopped();
    const watching = watchBreakers(
      redisStore,
      (t) => {
        if (options.json) {
          out.json({
            name: t.name,
            from: t.from,
            to: t.to,
            reason: t.reason,
            generation: t.generation,
            version: t.version,
            at: t.at,
            time: formatTime(t.at),
          });
          return;
        }
        out.line(
          [
            out.style(formatTime(t.at), 'dim'),
            escapeText(t.name),
            `${out.style(t.from, t.from)} -> ${out.style(t.to, t.to)}`,
            escapeText(t.reason),
            `generation ${t.generation}`,
            `version ${t.version}`,
          ].join('  '),
        );
      },
      {
        ...(args.length > 0 ? { names: args } : {}),
        onError: (error) => out.note(error.message),
      },
    );
    try {
      const ready = await watching.ready;
      const what =
        args.length > 0 ? `${args.length} named breaker(s)` : `${ready.length} breaker(s)`;
      out.note(`watching ${what} under prefix ${quoted(options.prefix)}; Ctrl-C stops`);
      await stopped;
    } finally {
      stopLink();
      watching.close();
    }
  },
};

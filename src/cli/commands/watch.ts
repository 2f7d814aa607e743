import { watchBreakers } from '../../admin/watch.js';
import type { Command } from '../command.js';
import { escapeText, formatTime, quoted } from '../output.js';

export const watch: Command = {
  name: 'watch',
  summary: 'one line per transition, live, from the change feed',
  description:
    'Follows every breaker under the prefix (or the NAMEs given) and prints one line per change of state, whoever made it, until interrupted (Ctrl-C, SIGTERM). With --json, one JSON object per line.',
  args: [{ name: 'NAME', optional: true, variadic: true }],
  usesRedis: true,
  async run({ args, options, out, store, io }) {
    const redisStore = await store();
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
      watching.close();
    }
  },
};

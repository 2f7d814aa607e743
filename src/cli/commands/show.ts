import { readBreaker } from '../../admin/read.js';
import type { Command } from '../command.js';
import { escapeText, formatDuration, formatRetryAfter, formatTime } from '../output.js';
import { detailJson } from '../views.js';

export const show: Command = {
  name: 'show',
  summary: 'one breaker: record, context, configuration',
  args: [{ name: 'NAME' }],
  usesRedis: true,
  async run({ args, options, out, store }) {
    const name = args[0] as string;
    const redisStore = await store();
    const info = await readBreaker(redisStore, name);
    if (options.json) {
      out.json(detailJson(info));
      return;
    }
    const { config, record } = info;
    const now = redisStore.clock.now();
    const probes = Object.entries(record.snapshot.context.probes).map(
      ([id, until]) => `${escapeText(id)} until ${formatTime(until)}`,
    );
    const lines: [string, string][] = [
      ['name', escapeText(info.name)],
      ['state', `${out.style(info.stateValue, info.state)} (${info.reason})`],
    ];
    if (info.retryAfterMs !== null) {
      const due = info.retryAfterMs > 0 ? '' : ' (at the next call)';
      lines.push(['retry after', `${formatRetryAfter(info.retryAfterMs)}${due}`]);
    }
    lines.push(
      [
        'opened at',
        info.openedAt === null
          ? 'never'
          : `${formatTime(info.openedAt)} (${formatDuration(Math.max(0, now - info.openedAt))} ago)`,
      ],
      ['failures', String(info.failures)],
      ['successes', String(info.successes)],
      ['probes', probes.length === 0 ? '0' : `${probes.length}: ${probes.join(', ')}`],
      ['generation', String(info.generation)],
      ['version', String(info.version)],
      ['write id', escapeText(info.writeId ?? '-')],
      [
        'configuration',
        `failMax ${config.failMax}, resetTimeout ${config.resetTimeout} ms, successThreshold ${config.successThreshold}, halfOpenMaxCalls ${config.halfOpenMaxCalls}, probeLease ${config.probeLease} ms`,
      ],
      ['record', escapeText(redisStore.keys(name).snapshot)],
    );
    for (const [label, value] of lines) out.line(`${out.style(label.padEnd(15), 'bold')}${value}`);
  },
};

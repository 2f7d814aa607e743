import { readBreaker } from '../../admin/read.js';
import type { FleetRates } from '../../admin/view.js';
import { readRates } from '../../dashboard/rates.js';
import type { Command } from '../command.js';
import { escapeText, formatDuration, formatRetryAfter, formatTime } from '../output.js';
import { detailJson } from '../views.js';

// The fleet's rates over the window, as the rate rules judge them (closed, with a rule).
function rateLines(
  rates: FleetRates | null,
  failureThreshold: number | undefined,
  slowThreshold: number | undefined,
): [string, string][] {
  if (rates === null) return [];
  const text = (rate: number | null, threshold: number | undefined) =>
    rate === -1
      ? `- (${rates.calls} of ${rates.minimumCalls} calls: below minimumCalls)`
      : `${rate?.toFixed(1)} % of ${rates.calls} calls (trips at ${threshold} %)`;
  const lines: [string, string][] = [];
  if (rates.failureRate !== null) {
    lines.push(['failure rate', text(rates.failureRate, failureThreshold)]);
  }
  if (rates.slowCallRate !== null) {
    lines.push(['slow calls', text(rates.slowCallRate, slowThreshold)]);
  }
  return lines;
}

export const show: Command = {
  name: 'show',
  summary: 'one breaker: record, context, configuration',
  args: [{ name: 'NAME' }],
  usesRedis: true,
  async run({ args, options, out, store }) {
    const name = args[0] as string;
    const redisStore = await store();
    const info = await readBreaker(redisStore, name);
    const rates = await readRates(redisStore, info);
    if (options.json) {
      out.json({ ...detailJson(info), rates });
      return;
    }
    const { config, record } = info;
    const now = redisStore.clock.now();
    const probes = Object.entries(record.snapshot.context.probes).map(
      ([id, until]) => `${escapeText(id)} until ${formatTime(until)}`,
    );
    const lines: [string, string][] = [
      ['name', escapeText(info.name)],
      ['state', `${out.style(info.stateValue, info.state)} (${escapeText(info.reason)})`],
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
      ...rateLines(rates, config.failureRateThreshold, config.slowCallRateThreshold),
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

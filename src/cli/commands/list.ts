import { listBreakers } from '../../admin/read.js';
import type { Command } from '../command.js';
import { escapeText, formatRetryAfter, quoted } from '../output.js';
import { listingJson } from '../views.js';

export const list: Command = {
  name: 'list',
  summary: 'every breaker: name, state, failures, retry-after, probes, version',
  description:
    'Lists every breaker with a record under the prefix (a breaker writes its record at its first change). A corrupt record is listed as corrupt, with its key and problem.',
  args: [],
  usesRedis: true,
  async run({ options, out, store }) {
    const listed = await listBreakers(await store());
    if (options.json) {
      out.json(listed.map(listingJson));
      return;
    }
    if (listed.length === 0) {
      out.line(`no breakers under prefix ${quoted(options.prefix)}`);
      return;
    }
    const rows = listed.map((entry) =>
      entry.corrupt
        ? [entry.name, 'corrupt', '-', '-', '-', String(entry.version)]
        : [
            entry.name,
            entry.state,
            String(entry.failures),
            entry.retryAfterMs === null ? '-' : formatRetryAfter(entry.retryAfterMs),
            String(entry.probes),
            String(entry.version),
          ],
    );
    out.table(
      ['NAME', 'STATE', 'FAILURES', 'RETRY-AFTER', 'PROBES', 'VERSION'],
      rows,
      (row, column) => {
        const entry = listed[row];
        if (column !== 1 || entry === undefined) return undefined;
        return entry.corrupt ? 'corrupt' : entry.state;
      },
    );
    for (const entry of listed) {
      if (entry.corrupt) {
        const at = entry.key === undefined ? '' : ` at ${entry.key}`;
        out.line(escapeText(`corrupt ${entry.name}${at}: ${entry.problem}`));
      }
    }
  },
};

/** One sample of a Prometheus text exposition. */
export interface Sample {
  readonly metric: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a scrape (`# HELP` and `# TYPE` lines left out). */
export function parseScrape(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) {
      labels[key as string] = (value as string).replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      );
    }
    const raw = match[3] as string;
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw);
    samples.push({ metric: match[1] as string, labels, value });
  }
  return samples;
}

/**
 * The samples of `metric` whose labels include `labels`, as `label=value,...` → value, for
 * compact assertions.
 */
export function series(
  samples: readonly Sample[],
  metric: string,
  labels: Readonly<Record<string, string>> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const sample of samples) {
    if (sample.metric !== metric) continue;
    if (!Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) continue;
    const key = Object.entries(sample.labels)
      .filter(([k]) => !(k in labels))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out[key] = sample.value;
  }
  return out;
}

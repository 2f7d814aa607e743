/**
 * The method the peers were measured with: warm-up, a calibration
 * that sizes each sample to about 250 ms, interleaved rounds with the variant order rotated,
 * `gc()` between samples, medians, and ratios taken within a round before their median.
 * The machine is shared and noisy, so only same-round ratios are comparable between runs.
 */

/** One variant: `run(n)` performs `n` operations, yielding every 1000 as the loop must. */
export interface Variant {
  readonly name: string;
  readonly run: (n: number) => Promise<void>;
  /** Called before each sample, outside what is measured (e.g. starting a metrics exporter). */
  readonly setUp?: () => void;
  /** Called after each sample, outside what is measured. */
  readonly tearDown?: () => void;
}

/** Per-variant medians of one benchmark. */
export interface Measured {
  readonly name: string;
  /** Median ns per operation over the rounds. */
  readonly nsPerOp: number;
  /** Median over the rounds of this variant's ns/op divided by each reference's, same round. */
  readonly ratios: Readonly<Record<string, number>>;
  /** Every round's ns/op, to show the spread. */
  readonly samples: readonly number[];
}

export interface MeasureOptions {
  /** Variant names to divide by, within each round. */
  readonly references: readonly string[];
  readonly rounds?: number;
  readonly sampleMs?: number;
}

const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    throw new Error('run with node --expose-gc (npm run bench does)');
  });

/** Lets timers and I/O run, as a real process between bursts of calls would. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function collect(): void {
  gc();
  gc();
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const at = (i: number) => sorted[i] ?? Number.NaN;
  return sorted.length % 2 === 1 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
}

async function timeNs(variant: Variant, n: number): Promise<number> {
  variant.setUp?.();
  try {
    const start = process.hrtime.bigint();
    await variant.run(n);
    return Number(process.hrtime.bigint() - start);
  } finally {
    variant.tearDown?.();
  }
}

// Doubles n until a sample takes a tenth of the target, then scales to the target.
async function calibrate(variant: Variant, sampleMs: number): Promise<number> {
  let n = 1000;
  for (;;) {
    const ns = await timeNs(variant, n);
    if (ns >= sampleMs * 1e5 || n >= 1e9) {
      return Math.max(1000, Math.round((n * sampleMs * 1e6) / ns / 1000) * 1000);
    }
    n *= 2;
  }
}

/** Measures every variant in interleaved, rotated rounds; see the module comment. */
export async function measure(
  variants: readonly Variant[],
  options: MeasureOptions,
): Promise<Measured[]> {
  const rounds = options.rounds ?? 7;
  const sampleMs = options.sampleMs ?? 250;
  for (const variant of variants) await timeNs(variant, 20_000);
  const sizes = new Map<string, number>();
  for (const variant of variants) {
    collect();
    sizes.set(variant.name, await calibrate(variant, sampleMs));
  }
  const perRound: Map<string, number>[] = [];
  for (let round = 0; round < rounds; round++) {
    const results = new Map<string, number>();
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length] as Variant;
      const n = sizes.get(variant.name) ?? 1000;
      collect();
      results.set(variant.name, (await timeNs(variant, n)) / n);
    }
    perRound.push(results);
  }
  return variants.map((variant) => {
    const samples = perRound.map((round) => round.get(variant.name) ?? Number.NaN);
    const ratios: Record<string, number> = {};
    for (const reference of options.references) {
      ratios[reference] = median(
        perRound.map((round) => (round.get(variant.name) ?? 0) / (round.get(reference) ?? 1)),
      );
    }
    return { name: variant.name, nsPerOp: median(samples), ratios, samples };
  });
}

export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A markdown table; numeric-looking columns are right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

/** A one-line verdict against a target. */
export function verdict(what: string, value: string, target: string, met: boolean): string {
  return `**Verdict:** ${what} = ${value} (target ${target}): ${met ? 'MET' : 'MISSED'}`;
}

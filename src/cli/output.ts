import { escapeText, writeNoLimit } from '../admin/view.js';
import type { CircuitState } from '../state.js';
import type { CliIO } from './command.js';
import { maskPasswords } from './secrets.js';

const RESET = '\u001b[0m';
const STYLES: Record<string, string> = {
  closed: '\u001b[32m',
  open: '\u001b[31m',
  halfOpen: '\u001b[33m',
  forcedOpen: '\u001b[35m',
  disabled: '\u001b[36m',
  corrupt: '\u001b[41;97m',
  bold: '\u001b[1m',
  dim: '\u001b[2m',
};

/**
 * Whether to colour what goes to `stdout`: only a terminal, and never with `NO_COLOR` set
 * (no-color.org); `FORCE_COLOR` (not `0`) colours a pipe too.
 */
export function useColour(io: CliIO): boolean {
  if ((io.env.NO_COLOR ?? '') !== '') return false;
  const force = io.env.FORCE_COLOR;
  if (force !== undefined && force !== '' && force !== '0') return true;
  return io.stdout.isTTY === true;
}

/** Escapes control characters and bidirectional marks: see {@link escapeText}. */
export { escapeText };

/** A breaker name in double quotes, as messages quote it: JSON's quoting, escaped. */
export function quoted(text: string): string {
  return escapeText(JSON.stringify(text));
}

/**
 * `value` as one line of JSON that writes no control character to a terminal, with no limit
 * (`failMax: Infinity`) written as `"Infinity"`.
 */
export function safeJson(value: unknown): string {
  return escapeText(JSON.stringify(value, writeNoLimit));
}

/** Milliseconds as a person reads them: `450 ms`, `17.7 s`, `2 min 5 s`, `3 h 20 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3_600)} h ${Math.floor((seconds % 3_600) / 60)} min`;
}

/**
 * An open circuit's retry-after: the time left, or `half-open due` once it is past (an open
 * breaker no running instance holds half-opens at the next call), as the dashboard says it.
 */
export function formatRetryAfter(ms: number): string {
  return ms > 0 ? formatDuration(ms) : 'half-open due';
}

/** Epoch ms as an ISO time. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** How a command writes: plain or coloured lines, tables, JSON. */
export class Output {
  readonly #io: CliIO;
  readonly colour: boolean;

  constructor(io: CliIO) {
    this.#io = io;
    this.colour = useColour(io);
  }

  /** `text` in the colour of a state (or `corrupt`, `bold`, `dim`), when colouring. */
  style(text: string, style: CircuitState | 'corrupt' | 'bold' | 'dim'): string {
    const code = STYLES[style];
    return this.colour && code !== undefined ? `${code}${text}${RESET}` : text;
  }

  line(text = ''): void {
    this.#io.stdout.write(`${text}\n`);
  }

  json(value: unknown): void {
    this.#io.stdout.write(`${safeJson(value)}\n`);
  }

  /**
   * A diagnostic line on stderr, prefixed with the program's name: escaped, and any URL's
   * password masked (a refused `--redis` is quoted in the message).
   */
  note(text: string): void {
    this.#io.stderr.write(`statebreaker: ${escapeText(maskPasswords(text))}\n`);
  }

  /**
   * A table: a header and rows of cells, left-aligned, two spaces apart. `styleOf` colours a
   * cell after it is padded, so that colour codes do not count in the widths.
   */
  table(
    header: readonly string[],
    rows: readonly (readonly string[])[],
    styleOf: (row: number, column: number) => Parameters<Output['style']>[1] | undefined = () =>
      undefined,
  ): void {
    const cells = rows.map((row) => row.map(escapeText));
    const widths = header.map((title, column) =>
      Math.max(title.length, ...cells.map((row) => (row[column] ?? '').length)),
    );
    const render = (row: readonly string[], style: (column: number) => string | undefined) =>
      row
        .map((cell, column) => {
          const padded = column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0);
          const chosen = style(column);
          return chosen === undefined ? padded : this.style(padded, chosen as 'bold');
        })
        .join('  ')
        .trimEnd();
    this.line(render(header, () => 'bold'));
    cells.forEach((row, index) => {
      this.line(render(row, (column) => styleOf(index, column)));
    });
  }
}

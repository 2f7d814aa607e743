import { escapeText } from './escape-text.js';
import type { ConfigMismatchError } from './record/errors.js';

// Once per process, as Node warns once about a possible EventEmitter leak: a store outage
// degrades every breaker on it, and one line says what a thousand would.
let warned = false;
let warnedMismatch = false;

/** The warning's `code`, for a `process.on('warning')` handler to recognise it by. */
const DEGRADED_WARNING_CODE = 'STATEBREAKER_DEGRADED';
/** The configuration mismatch warning's `code`. */
const MISMATCH_WARNING_CODE = 'STATEBREAKER_CONFIG_MISMATCH';

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return String(error);
  } catch {
    // An object without a prototype cannot be turned into a string.
    return typeof error;
  }
}

/**
 * Warns, once per process, that breaker `name` lost its store while nobody listens for
 * `degraded` or `storeError`. A degraded breaker decides alone, so a fleet whose Redis is
 * gone would otherwise turn into independent breakers without a word, much as an
 * EventEmitter's unhandled 'error' would go unseen if Node did not throw it.
 */
export function warnUnheardDegraded(name: string, error: unknown): void {
  if (warned) return;
  warned = true;
  // The name and the error's text come from users (tenants' names) and from the store: escaped,
  // as every operator tool writes them, so that a log shows them as they are.
  process.emitWarning(
    escapeText(
      `statebreaker: circuit breaker ${JSON.stringify(name)} lost its store and decides alone ` +
        `until the store answers again (${describeError(error)}). Listen for "degraded" or ` +
        `"storeError" on the breaker to handle it; this warning is given once per process.`,
    ),
    { code: DEGRADED_WARNING_CODE },
  );
}

/**
 * Warns, once per process, that breaker `name` shares its record with an instance configured
 * differently while nobody listens for `storeError`: each instance then decides with its own
 * thresholds (a rolling deploy that changes `failMax`), which nobody would otherwise learn.
 */
export function warnUnheardMismatch(error: ConfigMismatchError): void {
  if (warnedMismatch) return;
  warnedMismatch = true;
  process.emitWarning(
    escapeText(
      `statebreaker: breaker ${JSON.stringify(error.breaker)} is configured differently on ` +
        `another instance: ${error.differences.join(', ')}; each instance decides with its own ` +
        `configuration. Listen for "storeError" on the breaker to handle it; this warning is ` +
        `given once per process.`,
    ),
    { code: MISMATCH_WARNING_CODE },
  );
}

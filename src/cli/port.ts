import { UsageError } from './command.js';

/** A `--port` value: a TCP port from 1 to 65535, `fallback` when not given. */
export function parsePort(text: string | boolean | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || port < 1 || port > 65_535) {
    throw new UsageError(`--port must be a TCP port from 1 to 65535, got ${JSON.stringify(text)}`);
  }
  return port;
}

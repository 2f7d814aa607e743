import type { IncomingMessage } from 'node:http';
import { disable, forceOpen, type OperatorAction, reset } from '../admin/actions.js';
import { BreakerNotFoundError, OperatorConflictError } from '../admin/errors.js';
import { CorruptRecordError } from '../record/errors.js';
import type { BreakerStore } from '../stores/store.js';
import { crossOriginProblem, type TokenCheck } from './access.js';
import { HttpError, readJson } from './http.js';
import { type BreakerView, breakerView, type CorruptView } from './wire.js';

const ACTIONS: Readonly<Record<OperatorAction, typeof forceOpen>> = {
  forceOpen,
  disable,
  reset,
};

export function isOperatorAction(action: string): action is OperatorAction {
  return Object.hasOwn(ACTIONS, action);
}

/** What a write answers. */
export interface ActionAnswer {
  readonly action: OperatorAction;
  readonly from: string | null;
  readonly changed: boolean;
  readonly breaker: BreakerView | CorruptView;
}

/**
 * Lets a write through only with the dashboard's token, from no other site.
 * @throws HttpError 403 without a token configured or across origins, 401 without the token.
 */
export function authorize(request: IncomingMessage, token: TokenCheck | undefined): void {
  if (token === undefined) {
    throw new HttpError(
      403,
      'this dashboard is read-only: operator actions need a dashboard started with a token',
    );
  }
  const crossOrigin = crossOriginProblem(request);
  if (crossOrigin !== undefined) throw new HttpError(403, crossOrigin);
  if (!token.accepts(request)) {
    throw new HttpError(401, 'operator actions need the token: Authorization: Bearer <token>', {
      'WWW-Authenticate': 'Bearer realm="statebreaker"',
    });
  }
}

function nameOf(body: unknown): string {
  const name = (body as { name?: unknown } | null)?.name;
  if (typeof name !== 'string') {
    throw new HttpError(400, 'the request body must be {"name": "<breaker name>"}');
  }
  return name;
}

/**
 * Runs operator action `action` on the breaker the request's body names, through the admin API
 * (the statechart's event under the stored configuration, with compare-and-set).
 * @throws HttpError 4xx naming what was wrong, 503 when the store did not answer.
 */
export async function runAction(
  store: BreakerStore,
  action: OperatorAction,
  request: IncomingMessage,
): Promise<ActionAnswer> {
  const name = nameOf(await readJson(request));
  try {
    const result = await ACTIONS[action](store, name);
    return {
      action,
      from: result.from,
      changed: result.changed,
      breaker: breakerView(result.breaker),
    };
  } catch (error) {
    throw asHttpError(error);
  }
}

/** An error of the admin API or the store as the status that says what happened. */
export function asHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof BreakerNotFoundError) return new HttpError(404, error.message);
  if (error instanceof CorruptRecordError || error instanceof OperatorConflictError) {
    return new HttpError(409, error.message);
  }
  // A bad breaker name (checked by the admin API).
  if (error instanceof TypeError || error instanceof RangeError) {
    return new HttpError(400, error.message);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(503, `the store did not answer: ${message}`);
}

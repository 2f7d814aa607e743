import type { InspectionEvent } from 'xstate';

type InspectedRef = InspectionEvent['actorRef'];

import type { BreakerContext } from '../machine.js';
import type { InspectOption } from '../options.js';
import { freezeContext } from '../record/freeze.js';

/** The event an inspector sees when an instance restores its statechart from a record. */
export const RESTORE_EVENT = 'statebreaker.restore';

/**
 * One inspected actor for a breaker's whole life. An instance runs a new XState actor whenever
 * it adopts a record another instance wrote (and stops the old one); passed straight to each,
 * an inspector would show a new actor at every adoption and a stopped one behind it. This
 * observer shows every actor's events and snapshots as those of the first, drops the creation
 * and stop of the ones in between, and names a later actor's start as the restore it is.
 */
export class InspectionSession {
  readonly #target: (event: InspectionEvent) => void;
  #session: InspectedRef | null = null;
  #ending = false;

  constructor(inspect: InspectOption) {
    this.#target =
      typeof inspect === 'function'
        ? inspect
        : (event) => {
            inspect.next?.(event);
          };
  }

  /** The observer to give every actor of the breaker. */
  readonly observer = (event: InspectionEvent): void => {
    // The snapshot an inspector sees holds the actor's own context: frozen, so that an
    // inspector cannot write into the statechart.
    if (event.type === '@xstate.snapshot') {
      const { context } = event.snapshot as { context?: BreakerContext };
      if (context !== undefined) freezeContext(context);
    }
    const session = this.#session;
    if (session === null || event.actorRef === session) {
      if (event.type === '@xstate.actor' && session === null) this.#session = event.actorRef;
      if (isStop(event) && !this.#ending) return;
      this.#target(event);
      return;
    }
    if (event.type === '@xstate.actor' || (isStop(event) && !this.#ending)) return;
    const rewritten: Record<string, unknown> = {
      ...event,
      actorRef: session,
      rootId: session.sessionId,
    };
    // Delayed transitions are events an actor sends itself.
    if ('sourceRef' in event && event.sourceRef === event.actorRef) rewritten.sourceRef = session;
    if ('event' in event && event.event.type === 'xstate.init') {
      rewritten.event = { type: RESTORE_EVENT };
    }
    this.#target(rewritten as unknown as InspectionEvent);
  };

  /** The next stop is the breaker's last: the inspector may show the actor as stopped. */
  end(): void {
    this.#ending = true;
  }
}

function isStop(event: InspectionEvent): boolean {
  return 'event' in event && event.event.type === 'xstate.stop';
}

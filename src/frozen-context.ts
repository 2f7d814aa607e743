import type { BreakerContext } from './machine.js';

/** A frozen copy of the statechart's context, for readers that must not change it. */
export function frozenContext(context: BreakerContext): Readonly<BreakerContext> {
  return Object.freeze({
    ...context,
    config: Object.isFrozen(context.config) ? context.config : Object.freeze({ ...context.config }),
    probes: Object.freeze({ ...context.probes }),
    ...(context.streak === undefined ? {} : { streak: Object.freeze([...context.streak]) }),
  });
}

import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The breakers whose admission is in progress around the current async context, by name: an
 * integration layered inside another on the same breaker (`breakerFetch` given to a provider
 * whose model is behind `breakerMiddleware`, or a `failoverModel` target) joins the outer
 * layer's attempt instead of admitting and counting the same call twice. Used only on these
 * integration paths, never by `breaker.call`.
 */
const admitted = new AsyncLocalStorage<ReadonlySet<string>>();

/** Whether a layer above has admitted the current call through `breaker` (by its name). */
export function admittedAbove(breaker: { readonly name: string }): boolean {
  return admitted.getStore()?.has(breaker.name) === true;
}

/** Runs `fn` with `breaker`'s admission marked as in progress for every layer below. */
export function withinAdmission<R>(breaker: { readonly name: string }, fn: () => R): R {
  const above = admitted.getStore();
  const names = new Set(above);
  names.add(breaker.name);
  return admitted.run(names, fn);
}

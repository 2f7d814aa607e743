import type { CircuitBreaker } from './breaker.js';
import type { CircuitState } from './state.js';

/** @internal Told of every breaker of the process as it is created and as it is disposed. */
export interface BreakerWatcher {
  created(breaker: CircuitBreaker): void;
  disposed(breaker: CircuitBreaker): void;
}

// Every breaker not yet disposed. Holding it here keeps nothing alive that its store does not
// already hold until dispose() (the store follows its replica), and lets an exporter started
// late find the breakers made before it.
const live = new Set<CircuitBreaker>();
// The state each breaker's listeners last heard: what its fleet's record holds (a decision in
// force locally is heard once its record is written). Metrics report this one.
const heard = new WeakMap<CircuitBreaker, HeardState>();

/** @internal What knows the state a breaker's listeners last heard (its replica). */
export interface HeardState {
  readonly shownState: CircuitState;
}
const watchers = new Set<BreakerWatcher>();

function tell(action: () => void): void {
  try {
    action();
  } catch (error) {
    // A watcher's bug must not make a breaker's constructor or dispose() throw.
    process.emitWarning(`statebreaker: a breaker watcher threw: ${String(error)}`);
  }
}

/** @internal Called by a breaker at the end of its constructor. */
export function breakerCreated(breaker: CircuitBreaker, heardState: HeardState): void {
  live.add(breaker);
  heard.set(breaker, heardState);
  for (const watcher of watchers) tell(() => watcher.created(breaker));
}

/** @internal Called by a breaker when it is disposed. */
export function breakerDisposed(breaker: CircuitBreaker): void {
  if (!live.delete(breaker)) return;
  for (const watcher of watchers) tell(() => watcher.disposed(breaker));
}

/** @internal The state `breaker`'s listeners last heard (its `state` for one not registered). */
export function heardStateOf(breaker: CircuitBreaker): CircuitState {
  return heard.get(breaker)?.shownState ?? breaker.state;
}

/** @internal The breakers of the process that are not disposed, in order of creation. */
export function liveBreakers(): IterableIterator<CircuitBreaker> {
  return live.values();
}

/**
 * @internal Tells `watcher` of every live breaker at once, then of every breaker created or
 * disposed until the returned function is called.
 */
export function watchBreakers(watcher: BreakerWatcher): () => void {
  watchers.add(watcher);
  for (const breaker of live) tell(() => watcher.created(breaker));
  return () => {
    watchers.delete(watcher);
  };
}

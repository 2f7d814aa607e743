/** The type of {@link CircuitBreaker.protect}: a wrapper factory and a method decorator. */
export type Protect = <This, A extends unknown[], R>(
  fn: (this: This, ...args: A) => R,
  context?: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
) => (this: This, ...args: A) => Promise<Awaited<R>>;

/** What `protect` needs of a breaker: its `call`. */
interface Caller {
  call<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>;
}

/**
 * The `protect` of one breaker: bound to it, since a standard decorator is called without
 * `this`.
 */
export function protectFor(breaker: Caller): Protect {
  return function protect<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
  ): (this: This, ...args: A) => Promise<Awaited<R>> {
    if (typeof fn !== 'function') {
      throw new TypeError(`protect() needs a function, got ${fn === null ? 'null' : typeof fn}`);
    }
    const wrapped = function protectedCall(this: This, ...args: A): Promise<Awaited<R>> {
      return breaker.call(() => fn.apply(this, args) as Awaited<R>);
    };
    // fn's name and arity, for stack traces, logs and code that checks a function's length.
    Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
    Object.defineProperty(wrapped, 'length', { value: fn.length, configurable: true });
    return wrapped;
  };
}

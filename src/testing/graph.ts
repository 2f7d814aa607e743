// `@xstate/graph` is an optional peer: only this entry point needs it. A static import of a
// missing package fails while Node links the module graph, before any of our code runs, with an
// error that does not say who wanted it or why; loading it here lets the error say both.
// Node's `import` of @xstate/graph loads its CommonJS build too (its "import" condition wraps
// the CommonJS file), so `require` loads the very same module and the same xstate.
import { createRequire } from 'node:module';

/** What a user reads when `statebreaker/testing` is imported without its optional peer. */
export const MISSING_GRAPH =
  'statebreaker/testing needs the optional peer @xstate/graph: npm install -D @xstate/graph';

const require = createRequire(import.meta.url);

function load(): typeof import('@xstate/graph') {
  let path: string;
  try {
    path = require.resolve('@xstate/graph');
  } catch (error) {
    throw new Error(MISSING_GRAPH, { cause: error });
  }
  return require(path) as typeof import('@xstate/graph');
}

export const { TestModel } = load();

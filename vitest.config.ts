import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^statebreaker$/, replacement: src('index.ts') },
      { find: /^statebreaker\/testing$/, replacement: src('testing/index.ts') },
      { find: /^statebreaker\/redis$/, replacement: src('stores/redis/index.ts') },
      { find: /^statebreaker\/store$/, replacement: src('stores/index.ts') },
      { find: /^statebreaker\/llm$/, replacement: src('llm/index.ts') },
      { find: /^statebreaker\/ai$/, replacement: src('ai/index.ts') },
      { find: /^statebreaker\/admin$/, replacement: src('admin/index.ts') },
      { find: /^statebreaker\/metrics$/, replacement: src('metrics/index.ts') },
      { find: /^statebreaker\/dashboard$/, replacement: src('dashboard/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});

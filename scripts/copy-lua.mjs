// tsc does not copy non-TypeScript files; the Redis store loads its Lua scripts at run time.
import { cpSync, existsSync } from 'node:fs';

if (existsSync('src/stores/lua')) cpSync('src/stores/lua', 'dist/stores/lua', { recursive: true });

// tsc copies only what it compiles: the Redis store loads its Lua scripts at run time, and the
// dashboard serves its page files from beside its module.
import { cpSync, existsSync } from 'node:fs';

for (const dir of ['stores/lua', 'dashboard/assets']) {
  if (existsSync(`src/${dir}`)) cpSync(`src/${dir}`, `dist/${dir}`, { recursive: true });
}

import type { Command } from './command.js';
import { dashboard } from './commands/dashboard.js';
import { disable } from './commands/disable.js';
import { inspect } from './commands/inspect.js';
import { list } from './commands/list.js';
import { open } from './commands/open.js';
import { reset } from './commands/reset.js';
import { show } from './commands/show.js';
import { watch } from './commands/watch.js';

/** Every `statebreaker` command, in the order the usage text lists them. */
export const COMMANDS: readonly Command[] = [
  list,
  show,
  open,
  disable,
  reset,
  watch,
  dashboard,
  inspect,
];

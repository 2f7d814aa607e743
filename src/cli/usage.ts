import type { Command, CommandOption } from './command.js';
import { COMMANDS } from './commands.js';
import { COMMON_OPTIONS } from './common-options.js';

const WIDTH = 80;

function wrap(text: string, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

function optionLines(options: Readonly<Record<string, CommandOption>>): string[] {
  const heads = Object.entries(options).map(([name, option]) => {
    const short = name === 'help' ? '-h, ' : name === 'version' ? '-v, ' : '';
    return [
      `${short}--${name}${option.value === undefined ? '' : ` ${option.value}`}`,
      option.help,
    ];
  });
  const width = Math.max(...heads.map(([head]) => (head as string).length));
  const indent = ' '.repeat(width + 4);
  return heads.map(
    ([head, help]) =>
      `  ${(head as string).padEnd(width)}  ${wrap(help as string, indent).trimStart()}`,
  );
}

/** How a command's arguments show in its usage line: `NAME`, `[NAME...]`. */
export function argumentsOf(command: Command): string {
  return command.args
    .map(({ name, optional, variadic }) => {
      const shown = variadic ? `${name}...` : name;
      return optional ? `[${shown}]` : shown;
    })
    .join(' ');
}

const EXIT_CODES =
  'Exit codes: 0 success; 1 the breaker does not exist, its record is corrupt, or Redis does not answer (one line on stderr says which); 2 bad usage.';

/** The usage text of every command. */
export function generalUsage(): string {
  const heads = COMMANDS.map((command) =>
    [command.name, argumentsOf(command)].filter(Boolean).join(' '),
  );
  const width = Math.max(...heads.map((head) => head.length));
  return [
    'Usage: statebreaker COMMAND [options]',
    '',
    'Look at and operate the circuit breakers a fleet shares through Redis.',
    '',
    'Commands:',
    ...COMMANDS.map((command, i) => `  ${(heads[i] as string).padEnd(width)}  ${command.summary}`),
    '',
    'Options of every command:',
    ...optionLines({ ...COMMON_OPTIONS, version: { type: 'boolean', help: 'the version' } }),
    '',
    wrap(EXIT_CODES),
    "Run 'statebreaker COMMAND --help' for a command's own help.",
    '',
  ].join('\n');
}

/** The usage text of one command. */
export function commandUsage(command: Command): string {
  const lines = [
    `Usage: statebreaker ${[command.name, argumentsOf(command)].filter(Boolean).join(' ')} [options]`,
    '',
    wrap(command.summary),
  ];
  if (command.description !== undefined) lines.push('', wrap(command.description));
  lines.push('', 'Options:', ...optionLines({ ...command.options, ...COMMON_OPTIONS }));
  lines.push('', wrap(EXIT_CODES), '');
  return lines.join('\n');
}

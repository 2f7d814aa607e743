import { readdirSync, readFileSync } from 'node:fs';
import { generalUsage } from '../../src/cli/usage.js';

/**
 * The documentation a reader meets: the README and every page of docs/, as paths from the
 * repository's root, README first.
 */
export function documentationFiles(root = '.'): string[] {
  const pages = readdirSync(`${root}/docs`)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...pages];
}

/**
 * The generated blocks of the documentation (the diagram, the testing example, the CLI usage),
 * by file and marker name, from their sources.
 */
export function generatedBlocks(): Record<string, Record<string, string>> {
  const mermaid = readFileSync('models/breaker.mmd', 'utf8').trimEnd();
  const example = readFileSync('test/testing-example.test.ts', 'utf8');
  const start = example.indexOf('// README-EXAMPLE-START\n');
  const end = example.indexOf('// README-EXAMPLE-END');
  if (start < 0 || end < 0) throw new Error('testing-example.test.ts lost its example markers');
  const code = example
    .slice(start + '// README-EXAMPLE-START\n'.length, end)
    .split('\n')
    .map((line) => line.replace(/^\/\/ ?/, ''))
    .join('\n')
    .trimEnd();
  return {
    'docs/statechart.md': { MODELS: `\`\`\`mermaid\n${mermaid}\n\`\`\`` },
    'docs/testing.md': { EXAMPLE: `\`\`\`ts\n${code}\n\`\`\`` },
    'docs/operating.md': { CLI: `\`\`\`\n${generalUsage().trimEnd()}\n\`\`\`` },
  };
}

/** `text` (the file `file`) with the content between `<!-- NAME:START -->` and `<!-- NAME:END -->` replaced. */
export function replaceBlocks(text: string, blocks: Record<string, string>, file: string): string {
  let out = text;
  for (const [name, content] of Object.entries(blocks)) {
    const open = `<!-- ${name}:START -->`;
    const close = `<!-- ${name}:END -->`;
    const from = out.indexOf(open);
    const to = out.indexOf(close);
    if (from < 0 || to < from) throw new Error(`${file} has no ${name} block`);
    out = `${out.slice(0, from + open.length)}\n${content}\n${out.slice(to)}`;
  }
  return out;
}

/** One ```ts block of a markdown file: where it starts, its code, and why it is not compiled, if so. */
export interface TypeScriptBlock {
  /** The line of its opening fence, 1-based. */
  readonly line: number;
  readonly code: string;
  /** The reason given by a `<!-- not compiled: reason -->` line just above the fence. */
  readonly notCompiled?: string;
}

/** Every ```ts block of `markdown` (the file `file`), in order. */
export function typeScriptBlocks(markdown: string, file = 'README.md'): TypeScriptBlock[] {
  const lines = markdown.split('\n');
  const blocks: TypeScriptBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`${file}: the ts block at line ${i + 1} is not closed`);
    const marker = /^<!-- not compiled: (.+) -->$/.exec(lines[i - 1] ?? '');
    const code = `${lines.slice(i + 1, end).join('\n')}\n`;
    blocks.push(marker ? { line: i + 1, code, notCompiled: marker[1] } : { line: i + 1, code });
    i = end;
  }
  return blocks;
}

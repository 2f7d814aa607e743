import { readFileSync } from 'node:fs';
import { generalUsage } from '../../src/cli/usage.js';

/** The README's generated blocks (diagram, testing example, CLI usage), by marker name, from their sources. */
export function readmeBlocks(): Record<string, string> {
  const mermaid = readFileSync('models/breaker.mmd', 'utf8').trimEnd();
  const example = readFileSync('test/testing-example.test.ts', 'utf8');
  const start = example.indexOf('// README-EXAMPLE-START\n');
  const end = example.indexOf('// README-EXAMPLE-END');
  if (start < 0 || end < 0) throw new Error('testing-example.test.ts lost its README markers');
  const code = example
    .slice(start + '// README-EXAMPLE-START\n'.length, end)
    .split('\n')
    .map((line) => line.replace(/^\/\/ ?/, ''))
    .join('\n')
    .trimEnd();
  return {
    MODELS: `\`\`\`mermaid\n${mermaid}\n\`\`\``,
    EXAMPLE: `\`\`\`ts\n${code}\n\`\`\``,
    CLI: `\`\`\`\n${generalUsage().trimEnd()}\n\`\`\``,
  };
}

/** `text` with the content between `<!-- NAME:START -->` and `<!-- NAME:END -->` replaced. */
export function replaceBlocks(text: string, blocks: Record<string, string>): string {
  let out = text;
  for (const [name, content] of Object.entries(blocks)) {
    const open = `<!-- ${name}:START -->`;
    const close = `<!-- ${name}:END -->`;
    const from = out.indexOf(open);
    const to = out.indexOf(close);
    if (from < 0 || to < from) throw new Error(`README has no ${name} block`);
    out = `${out.slice(0, from + open.length)}\n${content}\n${out.slice(to)}`;
  }
  return out;
}

/** One ```ts block of the README: where it starts, its code, and why it is not compiled, if so. */
export interface TypeScriptBlock {
  /** The line of its opening fence, 1-based. */
  readonly line: number;
  readonly code: string;
  /** The reason given by a `<!-- not compiled: reason -->` line just above the fence. */
  readonly notCompiled?: string;
}

/** Every ```ts block of `readme`, in order. */
export function typeScriptBlocks(readme: string): TypeScriptBlock[] {
  const lines = readme.split('\n');
  const blocks: TypeScriptBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`README: the ts block at line ${i + 1} is not closed`);
    const marker = /^<!-- not compiled: (.+) -->$/.exec(lines[i - 1] ?? '');
    const code = `${lines.slice(i + 1, end).join('\n')}\n`;
    blocks.push(marker ? { line: i + 1, code, notCompiled: marker[1] } : { line: i + 1, code });
    i = end;
  }
  return blocks;
}

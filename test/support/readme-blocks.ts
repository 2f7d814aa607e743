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

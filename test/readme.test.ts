import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generatedBlocks, replaceBlocks } from './support/readme-blocks.js';

describe('README and docs', () => {
  it.each(Object.entries(generatedBlocks()))(
    '%s embeds its generated blocks as their sources are now (npm run readme)',
    (file, blocks) => {
      const text = readFileSync(file, 'utf8');
      expect(text).toBe(replaceBlocks(text, blocks, file));
    },
  );

  it('names the two commands that package.json defines', () => {
    const readme = readFileSync('README.md', 'utf8');
    const scripts = (
      JSON.parse(readFileSync('package.json', 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm test');
    expect(scripts.demo).toBeDefined();
    expect(scripts.test).toContain('vitest');
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readmeBlocks, replaceBlocks } from './support/readme-blocks.js';

describe('README', () => {
  it('embeds the current statechart diagram and the testing example (npm run readme)', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toBe(replaceBlocks(readme, readmeBlocks()));
  });

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

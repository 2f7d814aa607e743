import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('the license', () => {
  it('is the MIT text package.json names, and npm publishes it', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license?: string };
    expect(pkg.license).toBe('MIT');
    expect(existsSync('LICENSE')).toBe(true);
    const text = readFileSync('LICENSE', 'utf8');
    expect(text).toMatch(/^MIT License/);
    expect(text).toContain('Copyright (c) 2026 statebreaker contributors');
    expect(text).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
    // What `npm publish` would pack, without packing it (nor building it: the prepack script).
    const { stdout } = await run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], {
      timeout: 60_000,
    });
    const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }];
    expect(pack.files.map((file) => file.path)).toContain('LICENSE');
  });
});

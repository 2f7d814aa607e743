import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  anchors,
  brokenLinks,
  type LinkSite,
  linkTargets,
  slug,
} from './support/markdown-links.js';
import { documentationFiles } from './support/readme-blocks.js';

// Every relative link of the README, the pages of docs/ and the examples' READMEs points to a
// file that exists, and every #anchor to a heading of its target, as GitHub renders them.

/** The README of every directory under examples/, when there is one. */
function exampleReadmes(dir = 'examples'): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : exampleReadmes(path);
    return entry.name === 'README.md' ? [path] : [];
  });
}

const files = [...documentationFiles(), ...exampleReadmes()];
const disk: LinkSite = { exists: existsSync, read: (path) => readFileSync(path, 'utf8') };

describe('links between the README, docs/ and the examples', () => {
  it('makes anchors as GitHub does', () => {
    expect(slug('Which clients a Cluster fleet may mix')).toBe(
      'which-clients-a-cluster-fleet-may-mix',
    );
    expect(slug('Streams: `breaker.stream(fn, options?)`')).toBe('streams-breakerstreamfn-options');
    expect(slug('Two commands: the demo and the tests')).toBe(
      'two-commands-the-demo-and-the-tests',
    );
    expect(slug('What `close()` leaves to you')).toBe('what-close-leaves-to-you');
    expect(slug('A [linked](x.md) heading_with_underscores')).toBe(
      'a-linked-heading_with_underscores',
    );
    expect([...anchors('# A\n\n## A\n\n```\n# not a heading\n```\n### A\n')]).toEqual([
      'a',
      'a-1',
      'a-2',
    ]);
  });

  it('reports a missing file, a missing heading and an anchor on a file that is not markdown', () => {
    const pages: Record<string, string> = {
      'docs/a.md': [
        '# Page A',
        'See [b](b.md#present), [gone](b.md#absent), [nowhere](c.md), [self](#page-a),',
        '[up](../README.md), [code](../src/x.ts#L3) and `[not a link](d.md)`.',
        '```md',
        '[in a fence](e.md)',
        '```',
      ].join('\n'),
      'docs/b.md': '## Present\n',
      'README.md': '# Root\n',
      'src/x.ts': '',
    };
    const site: LinkSite = {
      exists: (path) => path in pages || path === 'docs',
      read: (path) => pages[path] ?? '',
    };
    expect(linkTargets(pages['docs/a.md'] as string)).toHaveLength(6);
    expect(brokenLinks('docs/a.md', site).map(({ target }) => target)).toEqual([
      'b.md#absent',
      'c.md',
      '../src/x.ts#L3',
    ]);
  });

  it('checks the README, every page of docs/ and their links', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/README.md', 'docs/api.md']));
    const links = files.flatMap((file) => linkTargets(readFileSync(file, 'utf8')));
    expect(links.filter((target) => !/^[a-z]+:/i.test(target)).length).toBeGreaterThan(80);
  });

  it.each(files)('%s: every relative link and #anchor points to something that exists', (file) => {
    expect(brokenLinks(file, disk)).toEqual([]);
  });
});

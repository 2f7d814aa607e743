// Fills the README's generated blocks (the statechart diagram, the testing example, the CLI
// usage) from their sources, so that the README cannot drift from them; test/readme.test.ts
// checks it.
import { readFileSync, writeFileSync } from 'node:fs';
import { readmeBlocks, replaceBlocks } from '../test/support/readme-blocks.js';

const readme = readFileSync('README.md', 'utf8');
writeFileSync('README.md', replaceBlocks(readme, readmeBlocks()));

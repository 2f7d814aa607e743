// Fills the generated blocks of the documentation (the statechart diagram, the testing example,
// the CLI usage) from their sources, so that the pages cannot drift from them;
// test/readme.test.ts checks it.
import { readFileSync, writeFileSync } from 'node:fs';
import { generatedBlocks, replaceBlocks } from '../test/support/readme-blocks.js';

for (const [file, blocks] of Object.entries(generatedBlocks())) {
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, replaceBlocks(text, blocks, file));
}

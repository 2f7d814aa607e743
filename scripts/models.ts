// Writes models/ from src/machine.ts: run after changing the statechart (a test fails until then).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { breakerModels } from '../src/models.js';

const dir = fileURLToPath(new URL('../models/', import.meta.url));
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(breakerModels())) {
  writeFileSync(`${dir}${name}`, text);
  console.log(`wrote models/${name}`);
}

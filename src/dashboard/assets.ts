import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { breakerMachine } from '../machine.js';
import { statechartSvg } from './diagram.js';

/** A file the dashboard serves, held in memory. */
export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

// The page's files ship beside this module (the build copies them into dist/dashboard/assets),
// so the page needs nothing from the network.
const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/assets/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/assets/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/assets/actions.js': { file: 'actions.js', type: 'text/javascript; charset=utf-8' },
} as const;

const DIAGRAM_SLOT = '<!-- statechart -->';

function asset(body: Buffer, type: string): Asset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, type, etag };
}

/**
 * The page and its files by URL path, the statechart diagram drawn into the page.
 * @throws Error naming the missing file when the package was built without its assets.
 */
export async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const url = new URL(`./assets/${file}`, import.meta.url);
    let body: Buffer;
    try {
      body = await readFile(url);
    } catch (error) {
      throw new Error(
        `the dashboard's page file ${file} is missing beside the dashboard module (${(error as Error).message})`,
      );
    }
    if (file === 'index.html') {
      const html = body.toString('utf8');
      if (!html.includes(DIAGRAM_SLOT)) throw new Error(`index.html has no ${DIAGRAM_SLOT} slot`);
      body = Buffer.from(html.replace(DIAGRAM_SLOT, statechartSvg(breakerMachine)), 'utf8');
    }
    assets.set(path, asset(body, type));
  }
  return assets;
}

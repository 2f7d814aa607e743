// Relative links of markdown files, checked as GitHub renders them: the target file exists, and
// a #anchor names a heading of the target (GitHub's slugs, as github-slugger makes them).

/** One link of a markdown file that points nowhere. */
export interface BrokenLink {
  readonly file: string;
  readonly target: string;
  readonly problem: string;
}

/** What the checker needs of the file system, so that it can be tried on text of its own. */
export interface LinkSite {
  /** Whether `path` (from the repository's root, no trailing slash) is a file or a directory. */
  exists(path: string): boolean;
  /** The text of the markdown file at `path`. */
  read(path: string): string;
}

/** `text` without fenced code blocks, inline code spans and HTML comments. */
function prose(text: string): string {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/`[^`\n]*(?:\n[^`\n]+)*`/g, '');
}

/** GitHub's anchor for a heading's text: lower case, punctuation and symbols dropped, spaces as hyphens. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors of a markdown file's headings, in order; a repeated one gets `-1`, `-2`, ... */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  const outside = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const match of outside.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** The link targets of a markdown file's prose: inline links, images and reference definitions. */
export function linkTargets(text: string): string[] {
  const body = prose(text);
  const inline = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const references = [...body.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)];
  return [...inline, ...references].map((match) => match[1] as string);
}

/** `path` joined to the directory of `file`, both from the repository's root; null above the root. */
function resolve(file: string, path: string): string | null {
  const parts = file.split('/').slice(0, -1);
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

/** Every relative link of `file` whose target does not exist, or whose #anchor is no heading. */
export function brokenLinks(file: string, site: LinkSite): BrokenLink[] {
  const broken: BrokenLink[] = [];
  for (const target of linkTargets(site.read(file))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
    const hash = target.indexOf('#');
    const path = decodeURI(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = path === '' ? file : resolve(file, path);
    if (resolved === null || resolved === '' || !site.exists(resolved)) {
      broken.push({ file, target, problem: `no file ${resolved ?? path}` });
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith('.md')) {
      broken.push({ file, target, problem: `#${anchor} on ${resolved}, which is not markdown` });
    } else if (!anchors(site.read(resolved)).has(anchor)) {
      broken.push({ file, target, problem: `${resolved} has no heading #${anchor}` });
    }
  }
  return broken;
}

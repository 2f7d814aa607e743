/**
 * A record's lineage: the write ids of the records it was built on, oldest first,
 * space-separated, the last {@link LINEAGE} only. An instance whose own write got no answer
 * learns from a newer record's lineage that the write landed beneath it.
 */

/** How many ancestors' write ids a record carries in its lineage. */
export const LINEAGE = 6;

/** The lineage of a record written on a base whose own lineage and write id are given. */
export function lineageAfter(lineage: string | undefined, writeId: string | undefined): string {
  const ids = lineage
    ? writeId === undefined
      ? lineage
      : `${lineage} ${writeId}`
    : (writeId ?? '');
  // The last LINEAGE ids: what follows the LINEAGE-th space from the end (no array per write).
  let spaces = 0;
  for (let i = ids.length - 1; i >= 0; i--) {
    if (ids.charCodeAt(i) === SPACE && ++spaces === LINEAGE) return flat(ids.slice(i + 1));
  }
  return flat(ids);
}

const SPACE = 32;

/**
 * `text` made flat in V8, for a string kept as long as a record is (a write id, a lineage): one
 * made by concatenation is a chain of strings (a write id with its prefix, about 160 bytes), and
 * reading a character flattens it; the next collection then keeps the flat copy only.
 */
export function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/**
 * The own writes whose answer never came that a record descends from: they landed, and the
 * record already holds their events, which must not be applied again on top of it.
 */
export function landedIn<W extends { readonly writeId: string }>(
  lineage: string | undefined,
  open: readonly W[],
): W[] {
  if (!lineage || open.length === 0) return [];
  const ids = new Set(lineage.split(' '));
  return open.filter((write) => ids.has(write.writeId));
}

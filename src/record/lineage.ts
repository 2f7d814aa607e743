/**
 * A record's lineage: the write ids of the records it was built on, oldest first,
 * space-separated, the last {@link LINEAGE} only. An instance whose own write got no answer
 * learns from a newer record's lineage that the write landed beneath it.
 */

/** How many ancestors' write ids a record carries in its lineage. */
export const LINEAGE = 6;

/** The lineage of a record written on a base whose own lineage and write id are given. */
export function lineageAfter(lineage: string | undefined, writeId: string | undefined): string {
  const ids = lineage ? lineage.split(' ') : [];
  if (writeId !== undefined) ids.push(writeId);
  return ids.slice(-LINEAGE).join(' ');
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

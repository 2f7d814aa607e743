import type { BreakerInfo, BreakerListing } from '../admin/view.js';

/** A listed breaker as `--json` prints it: its fields, the stored record left out. */
export function listingJson(listing: BreakerListing): Record<string, unknown> {
  if (listing.corrupt) {
    const { name, key, problem, version } = listing;
    return { name, state: 'corrupt', key: key ?? null, problem, version };
  }
  const { record: _record, corrupt: _corrupt, writeId, ...fields } = listing;
  return { ...fields, writeId: writeId ?? null };
}

/** One breaker as `show --json` prints it: its fields, the context and the stored snapshot. */
export function detailJson(info: BreakerInfo): Record<string, unknown> {
  return {
    ...listingJson(info),
    context: info.record.snapshot.context,
    snapshot: info.record.snapshot,
  };
}

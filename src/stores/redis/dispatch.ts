import { decodeRecord, splitChange } from './codec.js';
import type { Followers } from './followers.js';
import type { Listing } from './listing.js';
import type { Resync } from './resync.js';

/** Where a change message goes: the followers of its name, the watchers, the resync. */
export interface ChangeTargets {
  readonly followers: Followers;
  readonly listing: Listing;
  readonly resync: Resync;
}

/** Hands one change message from the feed to whoever follows or watches its breaker. */
export function dispatchChange(
  message: string,
  { followers, listing, resync }: ChangeTargets,
): void {
  const change = splitChange(message);
  if (change === null) return;
  const { name, seq } = change;
  if (seq !== null) {
    // Every change is numbered: a number that does not follow the last one means a message
    // was lost (or the counter went back with lost data). Resync, whoever it was for.
    if (resync.numbered(seq)) listing.tell((watcher) => watcher.missed?.());
  }
  if (!followers.has(name) && !listing.watched) return;
  // Decoded only for followed names (or when watched): every store hears every change under
  // its prefix.
  const decoded = decodeRecord(change.version, change.snapshot);
  if (listing.watched) listing.toWatchers(name, decoded);
  // A message that cannot be restored: read the stored record, which is what followers go by.
  if (!followers.deliver(name, decoded)) resync.batch({ names: [name] }).catch(() => {});
}

import type { StoredRecord } from '../store.js';
import type { Decoded } from './codec.js';

interface PendingLoad {
  readonly name: string;
  readonly resolve: (record: StoredRecord | null) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Loads asked for in one tick share one read: breakers created together (a process starting
 * with many) cost one script call per 500 records, not one round trip each.
 */
export class BatchedLoads {
  readonly #read: (names: readonly string[]) => Promise<Decoded[]>;
  readonly #usable: (name: string, decoded: Decoded) => StoredRecord | null;
  #loads: PendingLoad[] = [];

  /**
   * @param read reads the records of `names`, bounded as one call
   * @param usable the decoded record, or `null` after reporting why there is none to use
   */
  constructor(
    read: (names: readonly string[]) => Promise<Decoded[]>,
    usable: (name: string, decoded: Decoded) => StoredRecord | null,
  ) {
    this.#read = read;
    this.#usable = usable;
  }

  load(name: string): Promise<StoredRecord | null> {
    return new Promise((resolve, reject) => {
      if (this.#loads.length === 0) queueMicrotask(() => this.#flush());
      this.#loads.push({ name, resolve, reject });
    });
  }

  /** Rejects every load not yet read. */
  rejectAll(error: Error): void {
    for (const load of this.#loads) load.reject(error);
    this.#loads = [];
  }

  async #flush(): Promise<void> {
    const loads = this.#loads;
    this.#loads = [];
    if (loads.length === 0) return;
    let decoded: Decoded[];
    try {
      decoded = await this.#read(loads.map((load) => load.name));
    } catch (error) {
      for (const load of loads) load.reject(error);
      return;
    }
    loads.forEach((load, i) => {
      load.resolve(this.#usable(load.name, decoded[i] ?? { record: null }));
    });
  }
}

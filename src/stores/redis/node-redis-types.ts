// What the node-redis adapter uses of node-redis 5 and 6, typed here rather than imported so
// that the store builds without the optional peer installed.

export type Listener = (message: string, channel: string) => void;
export type Args = readonly string[];
export interface CommandOptions {
  readonly typeMapping: Record<string, never>;
}

export interface Emitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
}

/** What the adapter uses of a node-redis client. */
export interface NodeRedisClient extends Emitter {
  readonly options?: {
    readonly url?: string;
    readonly socket?: { readonly path?: string; readonly host?: string; readonly port?: number };
  };
  readonly isReady?: boolean;
  sendCommand(args: Args, options?: CommandOptions): Promise<unknown>;
  duplicate(): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy?(): void;
  disconnect?(): Promise<void>;
  subscribe(channel: string, listener: Listener): Promise<void>;
  unsubscribe(channel: string, listener: Listener): Promise<void>;
  sSubscribe(channel: string, listener: Listener): Promise<void>;
  sUnsubscribe(channel: string, listener: Listener): Promise<void>;
}

/** What the adapter uses of a node-redis cluster. */
export interface NodeRedisCluster extends Emitter {
  readonly _options?: {
    readonly rootNodes?: readonly {
      url?: string;
      socket?: { host?: string; port?: number };
    }[];
  };
  // Not public: node-redis 5 reads the slot map again only on MOVED or ASK (6 also after a
  // node's reconnect attempts), so after a master's death it would keep sending to it.
  readonly _slots?: { rediscover?(startWith: { options: unknown }): Promise<void> };
  readonly masters: readonly { readonly address?: string }[];
  /** Each slot's shard (`masters` and `slots` are public in node-redis 5 and 6). */
  readonly slots?: readonly ({ readonly master?: { readonly address?: string } } | undefined)[];
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: Args,
    options?: CommandOptions,
  ): Promise<unknown>;
  nodeClient(node: unknown): NodeRedisClient | Promise<NodeRedisClient>;
  subscribe(channel: string, listener: Listener): Promise<void>;
  unsubscribe(channel: string, listener: Listener): Promise<void>;
  sSubscribe(channel: string, listener: Listener): Promise<void>;
  sUnsubscribe(channel: string, listener: Listener): Promise<void>;
}

// Where a client connects, for messages. A Redis URL carries its password, and a message lands
// in logs and tickets: the user part is dropped whole. A password may hold `@` unencoded, so the
// user part ends at the last `@` before the host, as URL parsers read it.

/** `url` without its user name and password. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    // Not a URL: everything up to the last `@` after the scheme goes.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, '$1');
  }
}

/** `host:port` of a seed given as socket options, or its URL without credentials. */
export function seedAddress(seed: {
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
}): string {
  if (typeof seed.url === 'string') {
    try {
      const { hostname, port } = new URL(seed.url);
      return `${hostname || 'localhost'}:${port || 6379}`;
    } catch {
      return withoutCredentials(seed.url);
    }
  }
  return `${seed.host ?? 'localhost'}:${seed.port ?? 6379}`;
}

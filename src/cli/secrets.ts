// A Redis URL carries its password (`redis://user:password@host`, `?password=`); an operator
// pastes what the command wrote into a ticket, so no message may hold one.

// From `scheme://user:` to the last `@` of the word: a password may hold `@` or `/` unencoded.
const USERINFO_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/@:"',]*:)[^\s"',]*@/gi;
const QUERY_PASSWORD = /([?&]password=)[^&\s"',]*/gi;

/** `text` with the password of every URL in it written as `***`. */
export function maskPasswords(text: string): string {
  return text.replace(USERINFO_PASSWORD, '$1***@').replace(QUERY_PASSWORD, '$1***');
}

/**
 * `text`, a URL that did not parse, with no part of its userinfo: everything between the scheme
 * and the last `@` is written as `***`. Where the URL does not parse, its userinfo cannot be told
 * apart from the rest, and a password may hold any character (`,`, quotes, spaces).
 */
export function withoutUserinfo(text: string): string {
  const at = text.lastIndexOf('@');
  if (at === -1) return maskPasswords(text);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  return maskPasswords(`${scheme}***${text.slice(at)}`);
}

// What a terminal would act on or a reader would not see: C0 and C1 controls, DEL, the line and
// paragraph separators, the bidirectional formatting marks (a name reordered on screen: U+061C,
// U+200E/F, U+202A-E, U+2066-9), and the invisible ones that make two names look alike (soft
// hyphen, zero-width space and joiners, word joiner and invisible operators, byte order mark).
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
// The short escapes JSON uses, so that a name reads the same in a table and in a message.
const NAMED: Readonly<Record<string, string>> = {
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/**
 * `text` safe to write to a terminal, to show on a page and to paste into a ticket: every
 * control character (ESC, BEL, backspace, a newline...), bidirectional mark and invisible
 * character (zero-width space, byte order mark, soft hyphen...) is written as an escape, as JSON writes it (`\n`, `\u001b`, `\u202e`). The one function for every text an
 * operator tool did not write itself (breaker names, stored values, error messages): the CLI's
 * output and the dashboard's tiles; JSON output escapes the same characters.
 */
export function escapeText(text: string): string {
  return text.replace(
    UNSAFE,
    (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

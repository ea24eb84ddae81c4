// HTML for the operator console, built by a tagged template that escapes every interpolated value: a
// listing id, a peer's error or a feed URL is text, never markup. Only another `html` value (or `raw`,
// for the console's own constant markup) is inserted as it is.

/** Markup: made by `html` or `raw` only, so a plain string can never pass as one. */
export class Html {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }

  toString(): string {
    return this.#text;
  }
}

/** What may be interpolated: text (escaped), numbers, markup, lists of them; nothing for null/undefined/false. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' };

/** Text escaped for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => escapes[c] as string);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map((v: HtmlValue) => render(v)).join('');
  return escapeHtml(String(value));
}

/** The template tag: `html\`<td>${id}</td>\`` escapes `id`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i += 1) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Constant markup of the console's own (never anything read from a request, a feed or a peer). */
export function raw(text: string): Html {
  return new Html(text);
}

// WebDAV listings (RFC 4918 PROPFIND, `Depth: 1`), the one way a plain HTTP cache can say what it
// holds: nginx with libnginx-mod-http-dav-ext, Apache mod_dav, most WebDAV servers. The answer is
// a `multistatus` document with one `response` per member:
//   <D:response><D:href>/cache/nar/</D:href> ... <D:resourcetype><D:collection/></D:resourcetype>
//   <D:response><D:href>/cache/x.narinfo</D:href> ... <D:getcontentlength>512</D:getcontentlength>
//                 <D:getlastmodified>Sun, 06 Dec 2026 11:00:00 GMT</D:getlastmodified>
// Namespace prefixes differ between servers (D:, d:, lp1:, a default namespace), so elements are
// matched by local name. Pure: text in, entries out.

export const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?>\n' +
  '<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>\n';

export interface DavEntry {
  /** The member's path below the cache's root, decoded, without a trailing slash. */
  key: string;
  collection: boolean;
  size: number;
  lastModified: Date;
}

/**
 * The members of a multistatus answer, relative to `basePath` (the cache URL's path with its
 * trailing slash). Members outside the base (a server that answers with another prefix) are left out.
 */
export function parseMultistatus(xml: string, basePath: string): DavEntry[] {
  const out: DavEntry[] = [];
  for (const block of elements(xml, 'response')) {
    const href = elements(block, 'href')[0];
    if (href === undefined) continue;
    const path = hrefPath(decodeEntities(href.trim()));
    if (path === undefined || !path.startsWith(basePath)) continue;
    const key = path.slice(basePath.length).replace(/\/+$/, '');
    const collection = /<(?:[\w.-]+:)?collection\b/.test(block);
    const size = Number(elements(block, 'getcontentlength')[0]?.trim() ?? '0');
    const modified = Date.parse(decodeEntities(elements(block, 'getlastmodified')[0]?.trim() ?? ''));
    out.push({
      key,
      collection,
      size: Number.isFinite(size) ? size : 0,
      lastModified: new Date(Number.isFinite(modified) ? modified : 0),
    });
  }
  return out;
}

/** The contents of every `<prefix:name ...>...</prefix:name>` in `xml`, in order. */
function elements(xml: string, name: string): string[] {
  const re = new RegExp(`<((?:[\\w.-]+:)?${name})(?:\\s[^>]*)?>([\\s\\S]*?)</\\1\\s*>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[2] ?? '');
}

/** An href is an absolute path or a full URL, percent-encoded; undefined when it cannot be decoded. */
function hrefPath(href: string): string | undefined {
  try {
    const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(href) ? new URL(href).pathname : href;
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

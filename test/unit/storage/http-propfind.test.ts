import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMultistatus } from '../../../src/storage/http-propfind.js';

// As nginx 1.22 with libnginx-mod-http-dav-ext answered `PROPFIND /cache/ Depth: 1` on this machine.
const NGINX = `<?xml version="1.0" encoding="utf-8" ?>
<D:multistatus xmlns:D="DAV:">
<D:response>
<D:href>/cache/</D:href>
<D:propstat><D:prop><D:displayname>cache</D:displayname>
<D:getlastmodified>Sun, 06 Dec 2026 11:33:39 GMT</D:getlastmodified>
<D:resourcetype><D:collection/></D:resourcetype><D:lockdiscovery/><D:supportedlock>
</D:supportedlock></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/cache/nar/</D:href>
<D:propstat><D:prop><D:displayname>nar</D:displayname>
<D:getlastmodified>Sun, 06 Dec 2026 11:33:40 GMT</D:getlastmodified>
<D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/cache/aghv8shzw76p3aakd1zl1scsx4l5xf6l.narinfo</D:href>
<D:propstat><D:prop><D:displayname>aghv8shzw76p3aakd1zl1scsx4l5xf6l.narinfo</D:displayname>
<D:getcontentlength>597</D:getcontentlength>
<D:getlastmodified>Sun, 06 Dec 2026 11:33:41 GMT</D:getlastmodified>
<D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
</D:multistatus>
`;

describe('parseMultistatus', () => {
  test("nginx's answer: the collection itself, a sub-collection and a file with size and date", () => {
    assert.deepEqual(parseMultistatus(NGINX, '/cache/'), [
      { key: '', collection: true, size: 0, lastModified: new Date('2026-12-06T11:33:39Z') },
      { key: 'nar', collection: true, size: 0, lastModified: new Date('2026-12-06T11:33:40Z') },
      {
        key: 'aghv8shzw76p3aakd1zl1scsx4l5xf6l.narinfo',
        collection: false,
        size: 597,
        lastModified: new Date('2026-12-06T11:33:41Z'),
      },
    ]);
  });

  test('other prefixes, a default namespace, full-URL and percent-encoded hrefs, entities', () => {
    const xml = `<multistatus xmlns="DAV:"><response><href>https://h.example/a%20b/log/x%2By&amp;z</href>
      <propstat><prop><lp1:getcontentlength xmlns:lp1="DAV:">12</lp1:getcontentlength><resourcetype/></prop></propstat>
      </response><d:response xmlns:d="DAV:"><d:href>/elsewhere/file</d:href></d:response></multistatus>`;
    const entries = parseMultistatus(xml, '/a b/');
    assert.deepEqual(
      entries.map((e) => [e.key, e.size, e.collection]),
      [['log/x+y&z', 12, false]],
    );
  });

  test('an answer that is not a multistatus lists nothing', () => {
    assert.deepEqual(parseMultistatus('<html><body>hello</body></html>', '/'), []);
  });
});

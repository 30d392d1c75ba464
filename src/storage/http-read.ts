// Reading a large object (a NAR for `loft verify --check-contents`) from an HTTP cache as a stream:
// the answer's headers are retried like any request, the body is handed over unread.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { readAll, type HttpClient } from './http-client.js';

export interface StreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The start of an unsuccessful answer's body (for its error message). */
  body: Buffer;
  /** The body of a 200 answer. */
  stream?: Readable;
}

export function getStream(
  client: HttpClient,
  key: string,
  signal: AbortSignal | undefined,
): Promise<StreamAnswer> {
  return client.retrying('GET', key, signal, () => {
    return new Promise<StreamAnswer>((resolve, reject) => {
      const req = client.request('GET', key, client.headers(), signal);
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) resolve({ status, headers: res.headers, body: Buffer.alloc(0), stream: res });
        else readAll(res, 4096).then((body) => resolve({ status, headers: res.headers, body }), reject);
      });
      req.end();
    });
  });
}

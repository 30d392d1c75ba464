// HeadObject, GetObject of a body read whole, and PutObject of a body in memory: the requests a
// push sends per store path. Each goes the direct way (s3-direct.ts) once the bucket's route is
// known, and through the SDK's command otherwise (a bucket with another auth scheme, or
// `direct: false`). Both ways give the same outputs and throw the same SDK errors, which the
// store turns into StorageErrors (s3-object-store.ts).
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { abortOptions } from './s3-client.js';
import { S3DirectRequests, type DirectAnswer, type DirectRequest, type S3Transport } from './s3-direct.js';

export interface HeadOutput {
  ContentLength?: number | undefined;
  LastModified?: Date | undefined;
  ETag?: string | undefined;
}

export interface GetOutput {
  Body: Buffer;
  ETag?: string | undefined;
}

export interface PutOutput {
  ETag?: string | undefined;
}

export interface PutInput {
  /** The whole key, the store's prefix included. */
  Key: string;
  Body: Buffer;
  ContentType: string;
  ContentEncoding?: string;
  /** `*`: create only (S3 answers 412 when the key exists). */
  IfNoneMatch?: string;
  /** The body's sha256, signed as the payload hash instead of hashing the body again. */
  sha256Hex?: string;
}

export class S3SmallObjects {
  readonly #direct: S3DirectRequests | undefined;

  constructor(
    private readonly transport: S3Transport,
    private readonly bucket: string,
    direct = true,
  ) {
    this.#direct = direct ? new S3DirectRequests(transport, bucket) : undefined;
  }

  async head(key: string, signal?: AbortSignal): Promise<HeadOutput> {
    const answer = await this.sendDirect({ command: 'HeadObject', key, headers: {}, ...signalOf(signal) });
    if (answer === undefined) {
      return this.transport.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
        abortOptions(signal),
      );
    }
    const { headers } = answer;
    const length = headers['content-length'];
    const modified = headers['last-modified'];
    const at = modified === undefined ? Number.NaN : Date.parse(modified);
    return {
      ...(length !== undefined ? { ContentLength: Number(length) } : {}),
      ...(Number.isNaN(at) ? {} : { LastModified: new Date(at) }),
      ...etagOf(headers),
    };
  }

  async get(key: string, signal?: AbortSignal): Promise<GetOutput> {
    const answer = await this.sendDirect({ command: 'GetObject', key, headers: {}, ...signalOf(signal) });
    if (answer !== undefined) return { Body: answer.body, ...etagOf(answer.headers) };
    const out = await this.transport.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      abortOptions(signal),
    );
    const body = out.Body ? Buffer.from(await out.Body.transformToByteArray()) : Buffer.alloc(0);
    return { Body: body, ETag: out.ETag };
  }

  async put(input: PutInput, signal?: AbortSignal): Promise<PutOutput> {
    const headers: Record<string, string> = { 'content-type': input.ContentType };
    if (input.ContentEncoding !== undefined) headers['content-encoding'] = input.ContentEncoding;
    if (input.IfNoneMatch !== undefined) headers['if-none-match'] = input.IfNoneMatch;
    if (input.sha256Hex !== undefined) headers['x-amz-content-sha256'] = input.sha256Hex;
    const request = {
      command: 'PutObject' as const,
      key: input.Key,
      headers,
      body: input.Body,
      ...signalOf(signal),
    };
    const answer = await this.sendDirect(request);
    if (answer !== undefined) return etagOf(answer.headers);
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: input.Key,
      Body: input.Body,
      ContentType: input.ContentType,
      ContentLength: input.Body.length,
      ...(input.ContentEncoding !== undefined ? { ContentEncoding: input.ContentEncoding } : {}),
      ...(input.IfNoneMatch !== undefined ? { IfNoneMatch: input.IfNoneMatch } : {}),
    });
    if (input.sha256Hex !== undefined) usePayloadHash(command, input.sha256Hex);
    return this.transport.client.send(command, abortOptions(signal));
  }

  /** undefined: the bucket has no direct route, send it through the SDK. */
  private async sendDirect(request: DirectRequest): Promise<DirectAnswer | undefined> {
    const route = await this.#direct?.route();
    return route === undefined ? undefined : this.#direct!.send(route, request);
  }
}

/**
 * The SigV4 signer (@smithy/signature-v4 5.7) hashes every string or Buffer body itself, over http
 * and https alike, unless the request already carries `x-amz-content-sha256`: then it signs that
 * value as the payload hash (getPayloadHash). Set in the build step, before signing, it is signed.
 * The server checks it against the body, so a wrong value fails the PUT instead of storing garbage.
 */
function usePayloadHash(command: PutObjectCommand, hex: string): void {
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = hex;
      return next(args);
    },
    { step: 'build', name: 'loftPayloadHash' },
  );
}

function etagOf(headers: Record<string, string>): { ETag?: string } {
  const etag = headers.etag;
  return etag !== undefined ? { ETag: etag } : {};
}

function signalOf(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

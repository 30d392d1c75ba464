// What a small S3 request of one bucket needs that never changes from request to request, learnt
// once from the SDK itself: the URL its endpoint rules give the bucket, the path prefix its
// serializer puts before a key, the headers its build step adds (host, user agent), its SigV4
// signer and the auth scheme that signer belongs to (for the clock-skew bookkeeping), and its
// error deserializer. s3-direct.ts then signs and sends HEAD, GET and PUT of small bodies without
// the SDK's per-request middleware stack (docs/architecture.md, "Small S3 requests without the
// SDK's middleware stack").
//
// The probe is a HeadObject sent through the client's own stack up to the step before the retry
// middleware, where a middleware of the probe's command captures the request and the context and
// throws instead of going on: no request leaves the process, nothing is retried or counted. A
// bucket whose endpoint wants another auth scheme than plain SigV4 (S3 Express "sigv4-s3express",
// multi-region access points "sigv4a") gets no route: its requests all go through the SDK.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** The request shape the SDK's signer and HTTP handler take (a structural HttpRequest). */
export interface WireRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Uint8Array;
}

/** The SDK's HttpResponse, as its handler resolves it. */
export interface WireResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: unknown;
}

interface SigningProperties {
  config?: unknown;
  signingRegion?: string;
  signingName?: string;
  [key: string]: unknown;
}

/** AwsSdkSigV4Signer's clock-skew bookkeeping (@aws-sdk/core httpAuthSchemes). */
interface SchemeSigner {
  successHandler?(response: unknown, properties: SigningProperties): void;
  errorHandler?(properties: SigningProperties): (error: unknown) => never;
}

interface RequestSigner {
  sign(request: WireRequest, options: Record<string, unknown>): Promise<WireRequest>;
}

/** The parts of the client's resolved config the direct path uses. */
interface DirectConfig {
  signer(authScheme?: unknown): Promise<RequestSigner>;
  requestHandler: {
    handle(request: WireRequest, options: { abortSignal?: AbortSignal }): Promise<{ response: WireResponse }>;
  };
  protocol: {
    deserializeResponse(operation: unknown, context: unknown, response: WireResponse): Promise<unknown>;
  };
  systemClockOffset: number;
  disableClockSkewCorrection?: () => Promise<boolean | undefined>;
}

export type DirectCommand = 'HeadObject' | 'GetObject' | 'PutObject';

export interface DirectRoute {
  protocol: string;
  hostname: string;
  port?: number;
  /** What the SDK's serializer puts before the encoded key: "/bucket/" path-style, "/" virtual-hosted. */
  pathPrefix: string;
  /** host, user-agent, x-amz-user-agent as the SDK's build step set them. */
  headers: Record<string, string>;
  signer: RequestSigner;
  signingRegion: string | undefined;
  signingName: string | undefined;
  /** false when AWS_... config turns the correction off; then requests are signed with the local clock. */
  skewCorrection: boolean;
  config: DirectConfig;
  schemeSigner: SchemeSigner;
  /** The SDK's own error for a non-2xx answer (its deserializer's throw), or the error it threw. */
  errorOf(command: DirectCommand, response: WireResponse): Promise<unknown>;
}

const PROBE_KEY = 'loft-route-probe';
const DIRECTORY_BUCKET = /--xa?-s3$/;

class RouteCaptured extends Error {
  constructor(
    readonly request: WireRequest,
    readonly context: Record<string, unknown>,
  ) {
    super('route captured');
  }
}

/**
 * The route of `bucket`, or undefined when its requests must go through the SDK (another auth
 * scheme, a path the serializer shapes differently). Rejects with the SDK's error when the probe
 * failed before the capture (credentials that could not be loaded, a bucket name the SDK refuses):
 * the caller then sends that request through the SDK, which reports it, and probes again later.
 */
export async function learnDirectRoute(client: S3Client, bucket: string): Promise<DirectRoute | undefined> {
  // A directory bucket (S3 Express, named `...--x-s3` or `...--xa-s3`): the probe would already
  // open a session for it (CreateSession) to resolve its identity; its scheme is not plain SigV4.
  if (DIRECTORY_BUCKET.test(bucket)) return undefined;
  const { request, context } = await capture(client, bucket);
  const smithy = context.__smithy_context as
    | {
        selectedHttpAuthScheme?: {
          httpAuthOption?: { signingProperties?: SigningProperties };
          signer?: SchemeSigner;
        };
      }
    | undefined;
  const selected = smithy?.selectedHttpAuthScheme;
  const endpoint = context.endpointV2 as { properties?: { authSchemes?: { name?: string }[] } } | undefined;
  const authScheme = endpoint?.properties?.authSchemes?.[0];
  if (authScheme !== undefined && authScheme.name !== 'sigv4') return undefined;
  if (selected?.signer === undefined || !request.path.endsWith(`/${PROBE_KEY}`)) return undefined;
  if (request.protocol !== 'http:' && request.protocol !== 'https:') return undefined;
  const config = client.config as unknown as DirectConfig;
  const properties = selected.httpAuthOption?.signingProperties ?? {};
  const headers: Record<string, string> = {};
  for (const name of ['host', 'user-agent', 'x-amz-user-agent']) {
    const value = request.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  // The deserializer's context, as the SDK's deserialize middleware builds it: config and context.
  const serdeContext = { ...client.config, ...context };
  return {
    protocol: request.protocol,
    hostname: request.hostname,
    ...(request.port !== undefined ? { port: request.port } : {}),
    pathPrefix: request.path.slice(0, -PROBE_KEY.length),
    headers,
    signer: await config.signer(authScheme),
    signingRegion: properties.signingRegion,
    signingName: properties.signingName,
    skewCorrection: (await config.disableClockSkewCorrection?.()) !== true,
    config,
    schemeSigner: selected.signer,
    errorOf: (command, response) => deserializedError(config, serdeContext, command, response),
  };
}

/** Sends the probe; rejects with whatever else stopped it. */
async function capture(client: S3Client, bucket: string): Promise<RouteCaptured> {
  const probe = new HeadObjectCommand({ Bucket: bucket, Key: PROBE_KEY });
  type Handler = (args: { request?: unknown }) => Promise<unknown>;
  const stop =
    (_next: Handler, context: Record<string, unknown>): Handler =>
    (args) =>
      Promise.reject(new RouteCaptured(args.request as WireRequest, context));
  probe.middlewareStack.addRelativeTo(
    stop as unknown as Parameters<typeof probe.middlewareStack.addRelativeTo>[0],
    { relation: 'before', toMiddleware: 'retryMiddleware', name: 'loftRouteProbe' },
  );
  try {
    await client.send(probe);
  } catch (err) {
    if (err instanceof RouteCaptured) return err;
    throw err;
  }
  throw new Error('the route probe was answered without reaching its capture');
}

const OPERATIONS: Record<DirectCommand, unknown> = {
  HeadObject: new HeadObjectCommand({ Bucket: '', Key: '' }).schema,
  GetObject: new GetObjectCommand({ Bucket: '', Key: '' }).schema,
  PutObject: new PutObjectCommand({ Bucket: '', Key: '' }).schema,
};

/**
 * What the SDK's schema deserialization middleware does with an error answer (@smithy/core
 * schema): the protocol parses the S3 error XML (or, for a body-less HEAD, the status) into the
 * modelled exception with its `$metadata`; the answer rides along, hidden, as `$response`; an
 * answer that is not S3's XML at all (a proxy's HTML page) fails to parse, and that error gets the
 * answer's status as its `$metadata`.
 */
async function deserializedError(
  config: DirectConfig,
  serdeContext: unknown,
  command: DirectCommand,
  response: WireResponse,
): Promise<unknown> {
  const [, namespace, name, traits, input, output] = OPERATIONS[command] as unknown[];
  try {
    await config.protocol.deserializeResponse(
      { name, namespace, traits, input, output },
      serdeContext,
      response,
    );
  } catch (err) {
    if (typeof err !== 'object' || err === null) return err;
    try {
      Object.defineProperty(err, '$response', { value: response, enumerable: false, writable: false });
    } catch {
      // Already defined and fixed: the SDK's own middleware would have left it so too.
    }
    if (!('$metadata' in err)) {
      const header = (pattern: RegExp) =>
        Object.entries(response.headers).find(([k]) => pattern.test(k))?.[1];
      Object.assign(err, {
        $metadata: {
          httpStatusCode: response.statusCode,
          requestId: header(/^x-[\w-]+-request-?id$/),
          extendedRequestId: header(/^x-[\w-]+-id-2$/),
          cfId: header(/^x-[\w-]+-cf-id$/),
        },
      });
    }
    return err;
  }
  return Object.assign(new Error(`unexpected HTTP ${response.statusCode}`), {
    $metadata: { httpStatusCode: response.statusCode },
  });
}

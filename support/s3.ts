/**
 * A real S3-compatible server (s3rver) on 127.0.0.1:0 with one bucket in a temp directory,
 * an SDK client for it, and a log of the requests it received. Tests call close() in after().
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error -- s3rver ships no type declarations; S3rverClass below types what is used.
import S3rverUntyped from 's3rver';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  readonly httpServer: Server;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = S3rverUntyped as S3rverClass;

// The SDK warns once on Node 20 that later SDK versions will need Node 22.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

/** s3rver accepts only these (hard-coded). Not frozen: the SDK writes a $source field into it. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3Request {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface S3Server {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** The bucket that exists from the start. */
  readonly bucket: string;
  /** A client for the server (path style, s3rver credentials). */
  readonly client: S3Client;
  /** Every request the server received, in order. */
  readonly requests: S3Request[];
  /** The underlying HTTP server (to count connections, for instance). */
  readonly server: Server;
  /** Uploads a Buffer body (never a stream: see spike Q8), with optional x-amz-meta-* metadata. */
  put(key: string, body: string | Uint8Array, metadata?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export async function startS3(bucket = 'releases'): Promise<S3Server> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'overseer-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const requests: S3Request[] = [];
  server.httpServer.prependListener('request', (request) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...S3_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    bucket,
    client,
    requests,
    server: server.httpServer,
    async put(key, body, metadata) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: Buffer.from(body),
          ...(metadata === undefined ? {} : { Metadata: metadata }),
        }),
      );
    },
    async close() {
      client.destroy();
      // Keep-alive sockets of other clients (a fetcher under test) would hold close() open.
      server.httpServer.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { checkKey, type ObjectInfo, type ObjectStore } from './object-store.js';

export interface S3StoreOptions {
  bucket: string;
  /** Prepended to every key, e.g. `fieldbeam/` (empty: the bucket root). */
  prefix?: string;
  /** Custom endpoint (MinIO, s3rver, ...); unset for AWS. */
  endpoint?: string;
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Static credentials; unset uses the SDK's default chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * A request whose socket stays silent this long fails (retryable), and so does a connection not
   * made within a tenth of it: a store that accepts and never answers must not hang an export or a
   * build forever. Default 60 s.
   */
  requestTimeoutMs?: number;
  /**
   * Bytes per part when a file is uploaded (`putFile`): a file larger than this goes as a multipart
   * upload, one part in memory at a time. S3 wants at least 5 MiB per part (all but the last) and at
   * most 10,000 parts. Default 8 MiB.
   */
  partBytes?: number;
}

/** S3's smallest part (all but the last part of an upload). */
const MIN_PART_BYTES = 5 * 1024 * 1024;

const missing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
};

/** Objects in an S3 bucket through @aws-sdk/client-s3. A PUT is atomic on S3 by definition. */
export class S3ObjectStore implements ObjectStore {
  readonly describe: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partBytes: number;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.partBytes = Math.max(MIN_PART_BYTES, opts.partBytes ?? 8 * 1024 * 1024);
    this.prefix = opts.prefix ? (opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`) : '';
    this.describe = `s3 ${opts.bucket}/${this.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ''}`;
    this.client = new S3Client({
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      requestHandler: {
        requestTimeout: opts.requestTimeoutMs ?? 60_000,
        connectionTimeout: Math.ceil((opts.requestTimeoutMs ?? 60_000) / 10),
        // Without it the handler only warns and the request goes on waiting.
        throwOnRequestTimeout: true,
      },
    });
  }

  private k(key: string): string {
    return this.prefix + checkKey(key);
  }

  async put(key: string, body: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: body, ContentType: contentType }),
    );
  }

  /**
   * The file sent as it is read: one PUT when it fits in a part, otherwise a multipart upload of
   * parts read one after the other (memory holds one part, whatever the file's size). The object
   * appears only when the upload completes; a failed upload is aborted, so S3 keeps no parts of it.
   */
  async putFile(key: string, path: string, contentType = 'application/octet-stream'): Promise<void> {
    const Key = this.k(key);
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const read = async (buf: Buffer, len: number, at: number) => {
        let got = 0;
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, at + got);
          if (bytesRead === 0) throw new Error(`${path} ended at ${at + got} of ${size} bytes`);
          got += bytesRead;
        }
        return buf.subarray(0, len);
      };
      if (size <= this.partBytes) {
        const body = await read(Buffer.allocUnsafe(size), size, 0);
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentType: contentType }),
        );
        return;
      }
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: contentType }),
      );
      const UploadId = created.UploadId;
      if (!UploadId) throw new Error(`S3 gave no upload id for ${Key}`);
      try {
        const parts: CompletedPart[] = [];
        // One buffer for every part: each is sent (and any retry of it done) before the next is read.
        const buf = Buffer.allocUnsafe(this.partBytes);
        for (let at = 0, n = 1; at < size; at += this.partBytes, n++) {
          const body = await read(buf, Math.min(this.partBytes, size - at), at);
          const r = await this.client.send(
            new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: n, Body: body }),
          );
          parts.push({
            PartNumber: n,
            ETag: r.ETag,
            ...(r.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}),
          });
        }
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      } catch (err) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
          .catch(() => undefined);
        throw err;
      }
    } finally {
      await fh.close();
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return r.Body ? await r.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  async getStream(key: string) {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return { body: r.Body as Readable, size: r.ContentLength ?? 0 };
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return { key, size: r.ContentLength ?? 0 };
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
        }),
      );
      for (const o of r.Contents ?? []) {
        if (o.Key) out.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 });
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

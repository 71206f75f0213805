import S3rver from 's3rver';
import { freePort } from './ports.js';
import { type TempDir, tempDir } from './temp-dir.js';

export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The collector settings that point at this server and bucket. */
  readonly collectorEnv: Record<string, string>;
  close(): Promise<void>;
}

/** s3rver (an S3 API on the file system) on a free loopback port, with one bucket, in a temp folder. */
export async function startS3rver(opts: { bucket?: string } = {}): Promise<S3Server> {
  const dir: TempDir = tempDir('fieldbeam-s3-');
  const port = await freePort();
  const bucket = opts.bucket ?? 'fieldbeam-test';
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: dir.path,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver accepts these fixed credentials.
  const accessKeyId = 'S3RVER';
  const secretAccessKey = 'S3RVER';
  return {
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    collectorEnv: {
      FB_OBJECT_STORE: 's3',
      FB_S3_BUCKET: bucket,
      FB_S3_ENDPOINT: endpoint,
      FB_S3_REGION: 'us-east-1',
      FB_S3_FORCE_PATH_STYLE: 'true',
      FB_S3_ACCESS_KEY_ID: accessKeyId,
      FB_S3_SECRET_ACCESS_KEY: secretAccessKey,
    },
    async close() {
      await server.close();
      dir.remove();
    },
  };
}

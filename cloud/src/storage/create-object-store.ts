import { join } from 'node:path';
import type { CloudConfig } from '../config.js';
import { FolderObjectStore } from './folder-object-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore } from './s3-object-store.js';

/** The object store the settings name: a folder (default) or an S3 bucket. */
export function createObjectStore(config: CloudConfig): ObjectStore {
  if (config.FB_OBJECT_STORE === 's3') {
    if (!config.FB_S3_BUCKET) throw new Error('FB_S3_BUCKET is required when FB_OBJECT_STORE=s3');
    return new S3ObjectStore({
      bucket: config.FB_S3_BUCKET,
      ...(config.FB_S3_PREFIX ? { prefix: config.FB_S3_PREFIX } : {}),
      ...(config.FB_S3_ENDPOINT ? { endpoint: config.FB_S3_ENDPOINT } : {}),
      ...(config.FB_S3_REGION ? { region: config.FB_S3_REGION } : {}),
      forcePathStyle: config.FB_S3_FORCE_PATH_STYLE ?? Boolean(config.FB_S3_ENDPOINT),
      ...(config.FB_S3_ACCESS_KEY_ID && config.FB_S3_SECRET_ACCESS_KEY
        ? {
            credentials: {
              accessKeyId: config.FB_S3_ACCESS_KEY_ID,
              secretAccessKey: config.FB_S3_SECRET_ACCESS_KEY,
            },
          }
        : {}),
    });
  }
  return new FolderObjectStore(config.FB_OBJECT_DIR ?? join(config.FB_DATA_DIR, 'objects'));
}

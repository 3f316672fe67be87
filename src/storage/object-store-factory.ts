/**
 * Builds the object store a data dir's settings name (DESIGN.md decision 5): folder buckets under
 * `$AIRDOCK_DATA_DIR/buckets/`, or an S3-compatible service when `AIRDOCK_S3_ENDPOINT` is set.
 * The control plane and the `airdock bucket` commands read buckets through the same adapter.
 */
import path from 'node:path'
import type { Settings } from '../config/settings.js'
import { FsObjectStore } from './fs-object-store.js'
import type { ObjectStore } from './object-store.js'
import { S3ObjectStore } from './s3-object-store.js'

/** The settings that choose and configure the object store. */
export type ObjectStoreSettings = Pick<Settings, 'dataDir' | 'region' | 's3'>

/** The folder that holds one subfolder per folder bucket: `$AIRDOCK_DATA_DIR/buckets`. */
export function folderBucketsDir(dataDir: string): string {
  return path.join(dataDir, 'buckets')
}

/**
 * The configured object store: `S3ObjectStore` when `settings.s3` is set (the endpoint in the
 * settings' region), otherwise `FsObjectStore` over {@link folderBucketsDir}.
 */
export function createObjectStore(settings: ObjectStoreSettings): ObjectStore {
  return settings.s3
    ? new S3ObjectStore({ ...settings.s3, region: settings.region })
    : new FsObjectStore({ rootDir: folderBucketsDir(settings.dataDir) })
}

/**
 * Where artifact bytes live. The database keeps the rows (name, size,
 * sha256, content type, storage key); a store keeps the bytes by key.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type StoredObject = { size: number; sha256: string };

export type ArtifactStore = {
  /** Streams the bytes to the key, replacing what it held; nothing is stored if the stream fails. */
  put(key: string, body: ReadableStream<Uint8Array>): Promise<StoredObject>;
  get(key: string): Promise<ReadableStream<Uint8Array> | undefined>;
  /** Removes the key's bytes; a key that holds none is no error. */
  delete(key: string): Promise<void>;
};

/** The default store: one file per key under `root` (`<dataDir>/artifacts`). */
export function createFileArtifactStore(root: string): ArtifactStore {
  const base = resolve(root);
  const pathOf = (key: string) => {
    const path = resolve(base, key);
    // Keys are made by Tower, never by a minion; this is a guard, not validation.
    if (!path.startsWith(base + sep)) throw new Error(`artifact key outside the store: ${key}`);
    return path;
  };
  return {
    async put(key, body) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      const partial = `${path}.${process.pid}.${Date.now()}.partial`;
      const hash = createHash('sha256');
      let size = 0;
      const measure = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(body), measure, createWriteStream(partial));
        // A rename replaces the old bytes at once: a reader sees the old file or the new one.
        await rename(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      return { size, sha256: hash.digest('hex') };
    },
    async get(key) {
      const path = pathOf(key);
      try {
        if (!(await stat(path)).isFile()) return undefined;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      return Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
  };
}

export const artifactsDirectory = (dataDir: string) => join(dataDir, 'artifacts');

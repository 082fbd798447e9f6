import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { isSha256Digest } from './oci-reference';
import { ANNOTATION, isImageLayerType } from './oci-media-types';
import type { OciLimits } from './http-oci-registry.options';

/**
 * An artifact (or directory) we refuse to unpack or pack. Internal: the adapter wraps it in
 * OciInteractionError 'failed', and its message is the cause the logs show.
 */
export class ArtifactRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactRefusedError';
  }
}

/** A content descriptor as found in a manifest, after validation. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** A layer that becomes a file at `title` (relative POSIX path). */
export interface PlannedFile extends Descriptor {
  title: string;
}

/** Checks one descriptor's shape; the digest must be sha256 so we can verify it. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) {
    throw new ArtifactRefusedError(`${where} is not a descriptor`);
  }
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string') throw new ArtifactRefusedError(`${where} has no mediaType`);
  if (typeof d.digest !== 'string' || !isSha256Digest(d.digest)) {
    throw new ArtifactRefusedError(`${where} digest is not sha256:<64 hex>`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ArtifactRefusedError(`${where} size is not a non-negative integer`);
  }
  const annotations: Record<string, string> = {};
  if (d.annotations !== undefined) {
    if (typeof d.annotations !== 'object' || d.annotations === null) {
      throw new ArtifactRefusedError(`${where} annotations are not an object`);
    }
    for (const [k, v] of Object.entries(d.annotations)) {
      if (typeof v !== 'string')
        throw new ArtifactRefusedError(`${where} annotation ${k} is not a string`);
      annotations[k] = v;
    }
  }
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations };
}

/**
 * Splits a layer title into path segments, refusing anything that could leave the target
 * directory or be read differently by another tool: empty, absolute, `.`/`..` or empty segments,
 * NUL, backslash.
 */
export function titleSegments(title: string): string[] {
  const refuse = (why: string): ArtifactRefusedError =>
    new ArtifactRefusedError(`layer title ${JSON.stringify(title)} ${why}`);
  if (title.length === 0) throw refuse('is empty');
  if (title.length > 4096) throw refuse('is longer than 4096 characters');
  if (title.includes('\0')) throw refuse('contains NUL');
  if (title.includes('\\')) throw refuse('contains a backslash');
  if (title.startsWith('/')) throw refuse('is an absolute path');
  const segments = title.split('/');
  for (const segment of segments) {
    if (segment === '..') throw refuse("contains a '..' segment");
    if (segment === '.') throw refuse("contains a '.' segment");
    if (segment === '') throw refuse('contains an empty path segment');
  }
  return segments;
}

/**
 * Decides which layers become which files, before anything is downloaded: titled layers only
 * (untitled ones are not files, as in ORAS's file store; an untitled image filesystem layer means
 * a container image, refused), within the limits, no duplicate title,
 * and no title that needs another title's file as a directory (`a` and `a/b`).
 */
export function planScenarioFiles(layers: unknown, limits: OciLimits): PlannedFile[] {
  if (!Array.isArray(layers)) throw new ArtifactRefusedError('manifest has no layers array');
  if (layers.length > limits.maxLayers) {
    throw new ArtifactRefusedError(
      `manifest lists ${layers.length} layers, more than the limit of ${limits.maxLayers}`,
    );
  }
  const files: PlannedFile[] = [];
  let total = 0;
  layers.forEach((raw, index) => {
    const layer = parseDescriptor(raw, `layer ${index}`);
    const title = layer.annotations[ANNOTATION.title];
    if (title === undefined) {
      if (isImageLayerType(layer.mediaType)) {
        throw new ArtifactRefusedError(
          `layer ${index} is a container image layer (${layer.mediaType}), not a scenario file`,
        );
      }
      return;
    }
    if (layer.annotations[ANNOTATION.orasUnpack] === 'true') {
      throw new ArtifactRefusedError(
        `layer ${JSON.stringify(title)} is a packed directory (${ANNOTATION.orasUnpack}); push files one by one`,
      );
    }
    titleSegments(title);
    if (layer.size > limits.maxLayerBytes) {
      throw new ArtifactRefusedError(
        `layer ${JSON.stringify(title)} is ${layer.size} bytes, more than the limit of ${limits.maxLayerBytes}`,
      );
    }
    total += layer.size;
    if (total > limits.maxTotalBytes) {
      throw new ArtifactRefusedError(
        `layers add up to more than the limit of ${limits.maxTotalBytes} bytes`,
      );
    }
    files.push({ ...layer, title });
  });

  const titles = new Set<string>();
  const directories = new Set<string>();
  for (const { title } of files) {
    if (titles.has(title))
      throw new ArtifactRefusedError(`layer title ${JSON.stringify(title)} is duplicated`);
    titles.add(title);
    const segments = title.split('/');
    for (let i = 1; i < segments.length; i++) directories.add(segments.slice(0, i).join('/'));
  }
  for (const title of titles) {
    if (directories.has(title)) {
      throw new ArtifactRefusedError(
        `layer title ${JSON.stringify(title)} is a file and also the directory of another title`,
      );
    }
  }
  return files;
}

/**
 * Creates the file for `title` under `root` (exclusively, never through a link) and returns
 * its handle. Defence in depth on top of planScenarioFiles: the path must stay under `root`
 * once links are resolved.
 */
export async function createScenarioFile(root: string, title: string): Promise<FileHandle> {
  const segments = titleSegments(title);
  const target = join(root, ...segments);
  const rel = relative(root, target);
  if (rel === '' || isAbsolute(rel) || rel.split(sep).includes('..')) {
    throw new ArtifactRefusedError(
      `layer title ${JSON.stringify(title)} resolves outside the scenario`,
    );
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const [realRoot, realParent] = await Promise.all([realpath(root), realpath(parent)]);
  if (realParent !== join(realRoot, ...segments.slice(0, -1))) {
    throw new ArtifactRefusedError(
      `layer title ${JSON.stringify(title)} would write through a link`,
    );
  }
  try {
    return await open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'EEXIST' ||
      (err as NodeJS.ErrnoException).code === 'ELOOP'
    ) {
      throw new ArtifactRefusedError(
        `layer title ${JSON.stringify(title)} collides with an existing entry`,
      );
    }
    throw err;
  }
}

/** Writes all of `chunk` (a single write may be partial). */
export async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** A regular file of a directory to push. */
export interface LocalFile {
  /** Relative POSIX path: the layer title. */
  title: string;
  path: string;
}

/**
 * Lists the regular files under `directory`, recursively, sorted by title. Links are skipped
 * (never followed), as are sockets and devices; `skipped` names them for the caller.
 */
export async function listScenarioFiles(
  directory: string,
): Promise<{ files: LocalFile[]; skipped: string[] }> {
  const files: LocalFile[] = [];
  const skipped: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const title = prefix ? `${prefix}/${entry.name}` : entry.name;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, title);
      else if (entry.isFile()) files.push({ title, path });
      else skipped.push(title);
    }
  };
  await walk(directory, '');
  files.sort((a, b) => (a.title < b.title ? -1 : a.title > b.title ? 1 : 0));
  return { files, skipped };
}

/** Reads a file without following a link swapped in after listing. */
export async function readRegularFile(path: string): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OciInteractionError, OciReferenceMalformedError } from '../../shared/errors/oci.errors';
import { ScenarioInvalidError } from '../../shared/errors/scenario.errors';
import { OciRegistry, type FetchedScenario } from '../../shared/ports/oci-registry.port';
import {
  DEFAULT_OCI_TRANSFER_TIMEOUT_MS,
  type HttpOciRegistryOptions,
} from './http-oci-registry.options';
import {
  ANNOTATION,
  EMPTY_CONFIG,
  IMAGE_CONFIG_TYPES,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE,
} from './oci-media-types';
import { isSha256Digest, manifestReference, parseOciReference } from './oci-reference';
import {
  RegistryClient,
  TransferTimeoutError,
  discard,
  readLimitedBytes,
  transferDeadline,
  type RegistryExchange,
  type RegistryTarget,
} from './registry-client';
import {
  ArtifactRefusedError,
  createScenarioFile,
  listScenarioFiles,
  planScenarioFiles,
  readRegularFile,
  sha256Digest,
  titleSegments,
  writeAll,
  type PlannedFile,
} from './scenario-files';
import { SingleFlight } from '../../shared/single-flight';

/** Temp entries start with a dot so they can never be taken for a digest entry. */
const TEMP_PREFIX = '.tmp-';
/** A temp entry untouched this long belongs to a process that died mid-pull. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * Scenario registry client over the OCI distribution API (ORAS artifact conventions).
 *
 * Cache layout: `<cacheDir>/oci/sha256_<hex>/` holds the files of manifest `sha256:<hex>`
 * (the `:` of upstream's `<cache>/oci/<digest>` is replaced because it is not portable).
 * An entry appears only by an atomic rename of a complete download from
 * `<cacheDir>/oci/.tmp-<hex prefix>-<random>/`, so an existing entry is always complete.
 */
@Injectable()
export class HttpOciRegistry implements OciRegistry {
  private readonly logger = new Logger(HttpOciRegistry.name);
  private readonly client: RegistryClient;
  private readonly pulls = new SingleFlight<string>();
  private staleSweep?: Promise<void>;

  constructor(private readonly options: HttpOciRegistryOptions) {
    this.client = new RegistryClient({
      insecure: options.insecure,
      username: options.username,
      password: options.password,
      requestTimeoutMs: options.requestTimeoutMs,
    });
  }

  /**
   * Asks the registry which manifest `reference` names now (a HEAD on the manifest; tags are
   * never cached). A pinned digest is returned as is once the registry confirms it has it.
   *
   * @returns `sha256:<hex>`
   * @throws OciReferenceMalformedError, OciReferenceNotFoundError, OciInteractionError, or the
   *   abort reason of `signal`.
   */
  checkReference(reference: string): void {
    parseOciReference(reference);
  }

  async resolve(reference: string, signal?: AbortSignal): Promise<string> {
    const target = { reference, ref: parseOciReference(reference) };
    try {
      return await this.bounded(signal, (bounded) => this.resolveTarget(target, bounded));
    } catch (err) {
      throw this.reported(target, err, signal);
    }
  }

  /**
   * Resolves `reference`, then returns the cache entry of that digest, pulling it first when
   * absent. Concurrent calls for one digest share one pull. Each layer titled
   * `org.opencontainers.image.title` becomes the file at that relative path; the manifest and
   * every layer are checked against their digest and size, and against the configured limits.
   *
   * @throws as `resolve`; an artifact we refuse to unpack is ScenarioInvalidError naming why.
   */
  async fetchScenario(
    reference: string,
    signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario> {
    const target = { reference, ref: parseOciReference(reference) };
    try {
      return await this.bounded(signal, async (bounded) => {
        let digest: string;
        try {
          digest = await this.resolveTarget(target, bounded);
        } catch (err) {
          const cached = await this.cachedWhenUnreachable(target, err, signal, recordedDigest);
          if (cached === undefined) throw err;
          return { reference, digest: cached, directory: this.entryPath(cached) };
        }
        const entry = this.entryPath(digest);
        if (!(await isDirectory(entry))) {
          // The shared pull has its own bound: a caller joining late must not extend it.
          await this.pulls.run(
            digest,
            (pullSignal) => this.bounded(pullSignal, (s) => this.pull(target, digest, s)),
            bounded,
          );
        }
        return { reference, digest, directory: entry };
      });
    } catch (err) {
      throw this.reported(target, err, signal);
    }
  }

  /**
   * During a registry outage, the digest the reference was last seen at (pinned in it, or
   * recorded by the caller) if its files are in the cache: an outage must not stop deployments
   * of scenarios already here. Only an unreachable registry: one that answers is believed.
   */
  private async cachedWhenUnreachable(
    target: RegistryTarget,
    err: unknown,
    signal: AbortSignal | undefined,
    recordedDigest: string | undefined,
  ): Promise<string | undefined> {
    const mapped = RegistryClient.toOciError(target, err, signal);
    if (!(mapped instanceof OciInteractionError) || mapped.kind !== 'unreachable') return undefined;
    const digest = target.ref.digest ?? recordedDigest;
    if (digest === undefined || !isSha256Digest(digest)) return undefined;
    if (!(await isDirectory(this.entryPath(digest)))) return undefined;
    this.logger.warn(
      `${target.reference}: registry unreachable ${causeText(mapped.cause)}; using the cached ${digest}`,
    );
    return digest;
  }

  /**
   * Maps a failure to what the port promises and logs why: the client gets a reason, the
   * operator the cause (a refused artifact names what is wrong with it).
   */
  private reported(target: RegistryTarget, err: unknown, signal?: AbortSignal): unknown {
    const mapped = RegistryClient.toOciError(target, err, signal);
    if (mapped instanceof ScenarioInvalidError) {
      this.logger.warn(`refused the scenario ${target.reference}: ${mapped.problem}`);
    } else if (mapped instanceof OciInteractionError) {
      this.logger.warn(`${target.reference}: ${mapped.message} ${causeText(mapped.cause)}`);
    }
    return mapped;
  }

  /**
   * Packs the regular files under `directory` as a scenario artifact and pushes it under the
   * reference's tag, as upstream's `scenario.EncodeOCI`/`oras push` do: manifest v1.1 with
   * artifactType `application/vnd.ctfer-io.scenario`, the empty config, one
   * `application/vnd.ctfer-io.file` layer per file titled with its relative POSIX path.
   * Links are skipped and never followed. Blobs the registry already has are not re-sent.
   *
   * @returns the manifest digest `sha256:<hex>`.
   * @throws OciReferenceMalformedError (also for a reference pinning a digest), OciInteractionError.
   */
  async pushScenario(directory: string, reference: string, signal?: AbortSignal): Promise<string> {
    const ref = parseOciReference(reference);
    if (ref.digest !== undefined) {
      throw new OciReferenceMalformedError(reference, 'push needs a tag, not a digest');
    }
    const target = { reference, ref };
    try {
      return await this.bounded(signal, (bounded) => this.push(directory, target, bounded));
    } catch (err) {
      throw RegistryClient.toOciError(target, err, signal);
    }
  }

  private async push(
    directory: string,
    target: RegistryTarget,
    signal: AbortSignal,
  ): Promise<string> {
    const { ref } = target;
    const { files, skipped } = await listScenarioFiles(directory);
    if (skipped.length > 0) {
      this.logger.warn(`not pushing links or special files: ${skipped.join(', ')}`);
    }
    const { limits } = this.options;
    if (files.length > limits.maxLayers) {
      throw new ArtifactRefusedError(
        `${files.length} files, more than the limit of ${limits.maxLayers}`,
      );
    }
    const layers: PlannedFile[] = [];
    let total = 0;
    for (const file of files) {
      titleSegments(file.title);
      const bytes = await readRegularFile(file.path);
      if (bytes.byteLength > limits.maxLayerBytes) {
        throw new ArtifactRefusedError(
          `${file.title} is ${bytes.byteLength} bytes, more than the limit of ${limits.maxLayerBytes}`,
        );
      }
      total += bytes.byteLength;
      if (total > limits.maxTotalBytes) {
        throw new ArtifactRefusedError(`files add up to more than ${limits.maxTotalBytes} bytes`);
      }
      const digest = sha256Digest(bytes);
      await this.pushBlob(target, digest, bytes, signal);
      layers.push({
        mediaType: MEDIA_TYPE.scenarioFile,
        digest,
        size: bytes.byteLength,
        annotations: { [ANNOTATION.title]: file.title },
        title: file.title,
      });
    }
    // distribution refuses the manifest (MANIFEST_BLOB_UNKNOWN) unless `{}` itself is pushed.
    await this.pushBlob(target, EMPTY_CONFIG.digest, EMPTY_CONFIG.bytes, signal);

    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociManifest,
        artifactType: MEDIA_TYPE.scenarioArtifact,
        config: {
          mediaType: MEDIA_TYPE.empty,
          digest: EMPTY_CONFIG.digest,
          size: EMPTY_CONFIG.size,
          data: EMPTY_CONFIG.data,
        },
        layers: layers.map(({ mediaType, digest, size, annotations }) => ({
          mediaType,
          digest,
          size,
          annotations,
        })),
        // As oras-go's PackManifest: creation time, second precision.
        annotations: {
          [ANNOTATION.created]: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      }),
    );
    const digest = sha256Digest(manifest);
    const put = await this.client.send(
      target,
      {
        method: 'PUT',
        path: `manifests/${ref.tag}`,
        headers: { 'Content-Type': MEDIA_TYPE.ociManifest },
        body: manifest,
        action: 'push',
      },
      signal,
    );
    if (put.response.status !== 201) throw await this.client.failure(target, put, 'manifest');
    const answered = put.response.headers.get('docker-content-digest');
    await discard(put);
    if (answered && answered !== digest) {
      throw new ArtifactRefusedError(`registry stored the manifest as ${answered}, not ${digest}`);
    }
    return digest;
  }

  /**
   * Runs `work` under OCI_TRANSFER_TIMEOUT: the idle timeout of each request does not stop a
   * registry that drips bytes, this does. Rejects with TransferTimeoutError when it fires.
   */
  private async bounded<T>(
    signal: AbortSignal | undefined,
    work: (bounded: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ms = this.options.transferTimeoutMs ?? DEFAULT_OCI_TRANSFER_TIMEOUT_MS;
    const deadline = transferDeadline(ms, signal);
    try {
      return await work(deadline.signal);
    } catch (err) {
      const reason: unknown = deadline.signal.reason;
      throw reason instanceof TransferTimeoutError && !signal?.aborted ? reason : err;
    } finally {
      deadline.done();
    }
  }

  private entryPath(digest: string): string {
    return join(this.ociRoot(), digest.replace(':', '_'));
  }

  private ociRoot(): string {
    return join(this.options.cacheDir, 'oci');
  }

  private async resolveTarget(target: RegistryTarget, signal?: AbortSignal): Promise<string> {
    const head = await this.client.send(
      target,
      {
        method: 'HEAD',
        path: `manifests/${manifestReference(target.ref)}`,
        headers: { Accept: MANIFEST_ACCEPT },
        action: 'pull',
      },
      signal,
    );
    if (!head.response.ok) throw await this.client.failure(target, head, 'manifest');
    const answered = head.response.headers.get('docker-content-digest');
    await discard(head);
    if (target.ref.digest !== undefined) return target.ref.digest;
    if (answered) {
      if (!isSha256Digest(answered)) {
        throw new OciInteractionError(target.reference, 'failed', {
          cause: new Error(`registry resolved the reference to ${answered}, not a sha256 digest`),
        });
      }
      return answered;
    }
    // The digest header is optional in the distribution spec: hash the manifest ourselves.
    const { digest } = await this.getManifest(target, manifestReference(target.ref), signal);
    return digest;
  }

  private async getManifest(
    target: RegistryTarget,
    reference: string,
    signal?: AbortSignal,
  ): Promise<{ digest: string; bytes: Buffer; contentType: string }> {
    const get = await this.client.send(
      target,
      {
        method: 'GET',
        path: `manifests/${reference}`,
        headers: { Accept: MANIFEST_ACCEPT },
        action: 'pull',
      },
      signal,
    );
    if (!get.response.ok) throw await this.client.failure(target, get, 'manifest');
    const contentType = get.response.headers.get('content-type') ?? '';
    const declared = get.response.headers.get('content-length');
    const bytes = await readLimitedBytes(
      get,
      MAX_MANIFEST_BYTES,
      () => new ArtifactRefusedError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`),
    ).catch((err: unknown) => {
      throw RegistryClient.toOciError(target, err, signal, get);
    });
    if (declared !== null && Number(declared) !== bytes.byteLength) {
      throw new ArtifactRefusedError(
        `manifest is ${bytes.byteLength} bytes, the registry announced ${declared}`,
      );
    }
    const digest = sha256Digest(bytes);
    if (isSha256Digest(reference) && digest !== reference) {
      throw new ArtifactRefusedError(
        `manifest content is ${digest}, not the requested ${reference}`,
      );
    }
    return { digest, bytes, contentType };
  }

  /** Downloads into a temp dir, then renames it into place; never leaves the temp dir behind. */
  private async pull(target: RegistryTarget, digest: string, signal: AbortSignal): Promise<string> {
    const root = this.ociRoot();
    await mkdir(root, { recursive: true, mode: 0o755 });
    this.staleSweep ??= this.sweepStaleTemps(root);
    await this.staleSweep;

    const entry = this.entryPath(digest);
    // A caller that checked just before the previous flight for this digest landed.
    if (await isDirectory(entry)) return entry;
    const temp = await mkdtemp(join(root, `${TEMP_PREFIX}${digest.slice(7, 19)}-`));
    try {
      const { bytes, contentType } = await this.getManifest(target, digest, signal);
      const files = planScenarioFiles(
        parseManifest(bytes, contentType).layers,
        this.options.limits,
      );
      const written = new Map<string, string>();
      for (const file of files) {
        const previous = written.get(file.digest);
        if (previous !== undefined) {
          // Same content under another title: copy instead of downloading again.
          const handle = await createScenarioFile(temp, file.title);
          await handle.close();
          await copyFile(previous, join(temp, ...file.title.split('/')));
          continue;
        }
        await this.downloadLayer(target, file, temp, signal);
        written.set(file.digest, join(temp, ...file.title.split('/')));
      }
      try {
        await rename(temp, entry);
      } catch (err) {
        // Another process completed the same digest first; its entry is as good as ours.
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isDirectory(entry))) throw err;
        await rm(temp, { recursive: true, force: true });
      }
      this.logger.log(`pulled ${target.reference} (${digest}): ${files.length} files`);
      return entry;
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Streams one blob to its file, counting and hashing on the way. */
  private async downloadLayer(
    target: RegistryTarget,
    file: PlannedFile,
    root: string,
    signal: AbortSignal,
  ): Promise<void> {
    const handle = await createScenarioFile(root, file.title);
    let get: RegistryExchange | undefined;
    try {
      get = await this.client.send(
        target,
        { method: 'GET', path: `blobs/${file.digest}`, action: 'pull' },
        signal,
      );
      if (!get.response.ok) throw await this.client.failure(target, get, 'blob');
      const hash = createHash('sha256');
      let count = 0;
      const body = get.response.body;
      if (body) {
        const reader = body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          get.heartbeat();
          count += value.byteLength;
          // The descriptor size is already within the limits; a body longer than it is refused
          // before it is written, whatever the registry claims.
          if (count > file.size) {
            await reader.cancel();
            throw new ArtifactRefusedError(
              `layer ${JSON.stringify(file.title)} is longer than its descriptor's ${file.size} bytes`,
            );
          }
          hash.update(value);
          await writeAll(handle, value);
        }
      }
      if (count !== file.size) {
        throw new ArtifactRefusedError(
          `layer ${JSON.stringify(file.title)} is ${count} bytes, its descriptor says ${file.size}`,
        );
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== file.digest) {
        throw new ArtifactRefusedError(
          `layer ${JSON.stringify(file.title)} content is ${actual}, not ${file.digest}`,
        );
      }
    } catch (err) {
      throw RegistryClient.toOciError(target, err, undefined, get);
    } finally {
      get?.done();
      await handle.close();
    }
  }

  private async pushBlob(
    target: RegistryTarget,
    digest: string,
    bytes: Buffer,
    signal?: AbortSignal,
  ): Promise<void> {
    const head = await this.client.send(
      target,
      { method: 'HEAD', path: `blobs/${digest}`, action: 'push' },
      signal,
    );
    await discard(head);
    if (head.response.ok) return;
    if (head.response.status !== 404) throw await this.client.failure(target, head, 'blob');

    // POST then PUT ?digest=: distribution does not finish a single monolithic POST.
    const post = await this.client.send(
      target,
      { method: 'POST', path: 'blobs/uploads/', action: 'push' },
      signal,
    );
    const location = post.response.headers.get('location');
    if (post.response.status !== 202 || !location) {
      throw await this.client.failure(target, post, 'upload');
    }
    await discard(post);
    const url = new URL(location, post.response.url);
    url.searchParams.set('digest', digest);
    const put = await this.client.send(
      target,
      {
        method: 'PUT',
        url,
        headers: { 'Content-Type': 'application/octet-stream' },
        body: bytes,
        action: 'push',
      },
      signal,
    );
    if (put.response.status !== 201) throw await this.client.failure(target, put, 'upload');
    await discard(put);
  }

  /**
   * Removes temp entries left by a process that died mid-pull. Best effort: a failure here only
   * costs disk space, so it is logged and never fails a pull.
   */
  private async sweepStaleTemps(root: string): Promise<void> {
    try {
      const now = Date.now();
      for (const name of await readdir(root)) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const path = join(root, name);
        const info = await lstat(path).catch(() => undefined);
        if (info && now - info.mtimeMs > STALE_TEMP_MS) {
          await rm(path, { recursive: true, force: true });
        }
      }
    } catch (err) {
      this.logger.warn(`could not sweep stale temp entries of ${root}: ${String(err)}`);
    }
  }
}

/**
 * Index and list manifests name other manifests, not files, and a container image config makes
 * an image: neither is a scenario. The artifact type is not required (upstream never checked it,
 * and ORAS 1.0 or an untyped push leave it out).
 */
function parseManifest(bytes: Buffer, contentType: string): { layers: unknown } {
  let manifest: unknown;
  try {
    manifest = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ArtifactRefusedError('manifest is not JSON');
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
    throw new ArtifactRefusedError('manifest is not a JSON object');
  }
  const m = manifest as Record<string, unknown>;
  const mediaType =
    typeof m.mediaType === 'string' ? m.mediaType : contentType.split(';')[0]!.trim();
  if (
    mediaType === MEDIA_TYPE.ociIndex ||
    mediaType === MEDIA_TYPE.dockerManifestList ||
    'manifests' in m
  ) {
    throw new ArtifactRefusedError(
      'reference names an index of manifests, not a scenario artifact',
    );
  }
  if (m.schemaVersion !== 2) throw new ArtifactRefusedError('manifest schemaVersion is not 2');
  const config = m.config as { mediaType?: unknown } | null | undefined;
  if (typeof config?.mediaType === 'string' && IMAGE_CONFIG_TYPES.has(config.mediaType)) {
    throw new ArtifactRefusedError(
      `manifest config is ${config.mediaType}: a container image, not a scenario (push its files with artifact type ${MEDIA_TYPE.scenarioArtifact})`,
    );
  }
  return { layers: m.layers };
}

function causeText(cause: unknown): string {
  return cause instanceof Error ? `(${cause.message})` : '';
}

async function isDirectory(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info?.isDirectory() ?? false;
}

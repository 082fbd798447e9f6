import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';
import { dirname, join, relative } from 'node:path';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { HttpOciRegistry } from '../../../src/adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  type HttpOciRegistryOptions,
} from '../../../src/adapters/oci/http-oci-registry.options';
import type { DomainError } from '../../../src/shared/errors/domain-error';
import {
  OciInteractionError,
  OciReferenceMalformedError,
  OciReferenceNotFoundError,
} from '../../../src/shared/errors/oci.errors';
import { ScenarioInvalidError } from '../../../src/shared/errors/scenario.errors';
import { ociRegistryContract } from '../../contract/oci-registry.contract';
import { startMimicRegistry, sha256, type MimicRegistry } from '../../support/mimic-registry';
import { manifestDigest, pushContainerImage, putManifest, uploadBlob } from '../../support/raw-oci';
import {
  freePort,
  startRegistry,
  startTokenAuthRegistry,
  type RunningService,
  type TokenAuthRegistry,
} from '../../support/services';
import { useToolchainPath } from '../../support/toolchain';

const execFileAsync = promisify(execFile);
const FILE_TYPE = 'application/vnd.ctfer-io.file';
const ARTIFACT_TYPE = 'application/vnd.ctfer-io.scenario';
const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
const USER = 'ctfer';
/** Where an absolute title would land if it were honoured. */
const ABSOLUTE_ESCAPE = join(tmpdir(), `cm-oci-absolute-escape-${process.pid}`);
const PASS = 's3cret';

/** Files of a small scenario: text, binary bytes, a subdirectory. */
const SCENARIO: Record<string, Buffer> = {
  'Pulumi.yaml': Buffer.from('name: scenario\nruntime: go\n'),
  'main.go': Buffer.from('package main\n\nfunc main() {}\n'),
  'assets/blob.bin': Buffer.from([0, 1, 2, 255, 254, 10, 13, 0]),
};

let scratch: string;
let counter = 0;

/** A fresh directory under the scratch dir. */
function fresh(prefix: string): string {
  return mkdtempSync(join(scratch, `${prefix}-`));
}

function writeTree(files: Record<string, Buffer>): string {
  const dir = fresh('src');
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
  return dir;
}

/** Every regular file under `dir`, by relative POSIX path. */
function readTree(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out[relative(dir, path).split('\\').join('/')] = readFileSync(path);
    }
  }
  return out;
}

/** Every entry under `dir` (files, dirs, links), as sorted relative paths. */
function listAll(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

/** An adapter with its own cache at `<parent>/cache`, so the parent shows any escape. */
function adapter(over: Partial<HttpOciRegistryOptions> = {}): {
  registry: HttpOciRegistry;
  parent: string;
  cacheDir: string;
} {
  const parent = fresh('cache-parent');
  const cacheDir = join(parent, 'cache');
  const registry = new HttpOciRegistry({
    cacheDir,
    insecure: true,
    limits: { ...DEFAULT_OCI_LIMITS },
    requestTimeoutMs: 10_000,
    ...over,
  });
  return { registry, parent, cacheDir };
}

function repo(host: string, name = 'examples/scenario'): string {
  counter++;
  return `${host}/${name}-${counter}`;
}

/**
 * Runs the oras CLI without blocking the event loop: the token server of the token-auth
 * registry lives in this process and must answer oras meanwhile.
 */
async function oras(args: string[], cwd?: string): Promise<void> {
  await execFileAsync('oras', args, { cwd, timeout: 60_000 });
}

async function orasPush(reference: string, dir: string, creds: string[] = []): Promise<void> {
  const files = Object.keys(readTree(dir))
    .sort()
    .map((f) => `${f}:${FILE_TYPE}`);
  await oras(
    ['push', '--plain-http', ...creds, reference, '--artifact-type', ARTIFACT_TYPE, ...files],
    dir,
  );
}

async function orasPull(reference: string, creds: string[] = []): Promise<Record<string, Buffer>> {
  const out = fresh('oras-out');
  await oras(['pull', '--plain-http', ...creds, reference, '-o', out]);
  return readTree(out);
}

/** A TCP relay to `endpoint` (host:port) that counts the connections made through it. */
async function countingRelay(
  endpoint: string,
): Promise<{ endpoint: string; connections(): number; stop(): Promise<void> }> {
  const colon = endpoint.lastIndexOf(':');
  const hostname = endpoint.slice(0, colon);
  const port = Number(endpoint.slice(colon + 1));
  const sockets = new Set<Socket>();
  let connections = 0;
  const track = (socket: Socket): Socket => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    return socket;
  };
  const server = createServer((client) => {
    connections++;
    const upstream = track(connect(port, hostname));
    track(client);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    return err as DomainError;
  }
  throw new Error('expected a rejection');
}

async function expectInteraction(
  promise: Promise<unknown>,
  kind: OciInteractionError['kind'],
): Promise<OciInteractionError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(OciInteractionError);
  expect(err.reason).toBe('OCI_INTERACTION');
  expect((err as OciInteractionError).kind).toBe(kind);
  return err as OciInteractionError;
}

/**
 * The artifact is the author's error: SCENARIO_NON_MATCHING_SPECIFICATION whose problem names
 * `what`, and a warning in the logs saying the same.
 */
async function expectRefused(promise: Promise<unknown>, what: string): Promise<void> {
  const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(ScenarioInvalidError);
  expect(err.reason).toBe('SCENARIO_NON_MATCHING_SPECIFICATION');
  const { problem, reference } = err as ScenarioInvalidError;
  expect(problem).toContain(what);
  expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(
    expect.stringContaining(`refused the scenario ${reference}: ${problem}`),
  );
  warn.mockRestore();
}

interface RawLayer {
  title?: string;
  bytes: Buffer;
  /** Size written in the descriptor, when it should lie. */
  size?: number;
}

/** Pushes a hand-built scenario manifest, the way a hostile author could. */
async function pushRaw(reference: string, layers: RawLayer[]): Promise<string> {
  await uploadBlob(reference, Buffer.from('{}'));
  const descriptors = [];
  for (const layer of layers) {
    descriptors.push({
      mediaType: FILE_TYPE,
      digest: await uploadBlob(reference, layer.bytes),
      size: layer.size ?? layer.bytes.byteLength,
      ...(layer.title === undefined
        ? {}
        : { annotations: { 'org.opencontainers.image.title': layer.title } }),
    });
  }
  return putManifest(reference, manifestOf(descriptors));
}

function manifestOf(layers: unknown[]): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: ARTIFACT_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_DIGEST, size: 2 },
    layers,
  };
}

/** The cache holds no temp entry and no entry for `digest`, and nothing left the cache. */
function expectNothingWritten(parent: string, digest: string): void {
  const entries = listAll(parent);
  expect(entries.filter((e) => e !== 'cache' && e !== join('cache', 'oci'))).toEqual([]);
  expect(entries).not.toContain(join('cache', 'oci', digest.replace(':', '_')));
}

beforeAll(() => {
  useToolchainPath();
  scratch = mkdtempSync(join(tmpdir(), 'cm-oci-e2e-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});
// The port's contract, against the registry of the e2e run, scenarios pushed with the ORAS CLI.
ociRegistryContract('HttpOciRegistry', () => {
  const { registry } = adapter();
  return Promise.resolve({
    registry,
    host: inject('registry'),
    publish: async (reference, files) => {
      await orasPush(reference, writeTree(textFiles(files)));
      return manifestDigest(reference);
    },
    cleanup: () => Promise.resolve(),
  });
});

function textFiles(files: Record<string, string>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(files).map(([path, text]) => [path, Buffer.from(text)]));
}

describe('HttpOciRegistry against an anonymous registry', () => {
  const host = inject('registry');

  it('should pull the files byte for byte when the oras CLI pushed them', async () => {
    const reference = `${repo(host)}:v1`;
    await orasPush(reference, writeTree(SCENARIO));
    const { registry, cacheDir } = adapter();

    const digest = await registry.resolve(reference);
    const fetched = await registry.fetchScenario(reference);

    expect(fetched.digest).toBe(digest);
    expect(fetched.reference).toBe(reference);
    expect(fetched.directory).toBe(join(cacheDir, 'oci', digest.replace(':', '_')));
    expect(readTree(fetched.directory)).toEqual(SCENARIO);
    expect(readdirSync(join(cacheDir, 'oci'))).toEqual([digest.replace(':', '_')]);
  });

  it('should give oras pull the same files when our adapter pushed them', async () => {
    const name = repo(host);
    const reference = `${name}:v1`;
    const { registry } = adapter();

    const digest = await registry.pushScenario(writeTree(SCENARIO), reference);

    expect(await orasPull(reference)).toEqual(SCENARIO);
    expect(await registry.resolve(reference)).toBe(digest);
    const path = name.slice(host.length + 1);
    const res = await fetch(`http://${host}/v2/${path}/manifests/v1`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha256(body)).toBe(digest);
    const manifest = JSON.parse(body.toString()) as {
      artifactType: string;
      mediaType: string;
      config: { mediaType: string; digest: string; size: number };
      layers: { mediaType: string; annotations: Record<string, string> }[];
    };
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: ARTIFACT_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_DIGEST, size: 2 },
    });
    expect(
      manifest.layers.map((l) => [l.mediaType, l.annotations['org.opencontainers.image.title']]),
    ).toEqual([
      [FILE_TYPE, 'Pulumi.yaml'],
      [FILE_TYPE, 'assets/blob.bin'],
      [FILE_TYPE, 'main.go'],
    ]);
  });

  it('should skip symlinks when pushing a directory that contains one', async () => {
    const dir = writeTree(SCENARIO);
    execFileSync('ln', ['-s', '/etc/hostname', join(dir, 'link')]);
    const reference = `${repo(host)}:v1`;
    const { registry } = adapter();

    await registry.pushScenario(dir, reference);

    expect(await orasPull(reference)).toEqual(SCENARIO);
  });

  it('should resolve a tag over one connection when it asks again and again', async () => {
    const reference = `${repo(host)}:v1`;
    await orasPush(reference, writeTree(SCENARIO));
    const relay = await countingRelay(host);
    try {
      const { registry } = adapter();
      const through = `${relay.endpoint}${reference.slice(host.length)}`;

      const digests = new Set<string>();
      for (let i = 0; i < 5; i++) {
        digests.add(await registry.resolve(through));
        // As the API's calls come apart: undici takes a connection back one turn after its answer.
        await nextTurn();
      }

      expect([...digests]).toEqual([await manifestDigest(reference)]);
      expect(relay.connections()).toBe(1);
    } finally {
      await relay.stop();
    }
  });

  it('should see the new manifest when a tag is pushed again and the same adapter resolves it', async () => {
    const reference = `${repo(host)}:latest`;
    const { registry } = adapter();
    const first = await registry.pushScenario(writeTree(SCENARIO), reference);
    expect((await registry.fetchScenario(reference)).digest).toBe(first);

    const changed = { ...SCENARIO, 'main.go': Buffer.from('package main // v2\n') };
    await orasPush(reference, writeTree(changed));

    const second = await registry.resolve(reference);
    expect(second).not.toBe(first);
    const fetched = await registry.fetchScenario(reference);
    expect(fetched.digest).toBe(second);
    expect(readTree(fetched.directory)).toEqual(changed);
  });

  it('should fetch by digest when the reference pins one beside a moved tag', async () => {
    const name = repo(host);
    const { registry } = adapter();
    const pinned = await registry.pushScenario(writeTree(SCENARIO), `${name}:v1`);
    await registry.pushScenario(
      writeTree({ 'Pulumi.yaml': Buffer.from('name: other\n') }),
      `${name}:v1`,
    );

    const fetched = await registry.fetchScenario(`${name}:v1@${pinned}`);

    expect(fetched.digest).toBe(pinned);
    expect(readTree(fetched.directory)).toEqual(SCENARIO);
  });

  it('should throw OCI_REFERENCE_NOT_FOUND when the tag or the repository is unknown', async () => {
    const name = repo(host);
    const { registry } = adapter();
    await registry.pushScenario(writeTree(SCENARIO), `${name}:v1`);

    for (const reference of [
      `${name}:nope`,
      `${host}/never/pushed:v1`,
      `${name}@sha256:${'0'.repeat(64)}`,
    ]) {
      const err = await rejection(registry.fetchScenario(reference));
      expect(err).toBeInstanceOf(OciReferenceNotFoundError);
      expect(err.reason).toBe('OCI_REFERENCE_NOT_FOUND');
      expect(err.metadata).toEqual({ reference });
    }
  });

  it('should throw OCI_REFERENCE_MALFORMED without asking the registry when the reference does not parse', async () => {
    const { registry } = adapter();
    for (const reference of [`${host}/Upper:v1`, `${host}/app@md5:abc`, 'no-registry']) {
      const err = await rejection(registry.resolve(reference));
      expect(err).toBeInstanceOf(OciReferenceMalformedError);
      expect(err.reason).toBe('OCI_REFERENCE_MALFORMED');
      expect((err as OciReferenceMalformedError).problem).not.toBe('');
    }
  });

  it('should throw OCI_INTERACTION unreachable when nothing listens on the registry port', async () => {
    const port = await freePort();
    const { registry, parent } = adapter();
    const reference = `127.0.0.1:${port}/examples/app:v1`;

    await expectInteraction(registry.resolve(reference), 'unreachable');
    await expectInteraction(registry.fetchScenario(reference), 'unreachable');
    expect(listAll(parent)).toEqual([]);
  });

  it('should throw OCI_INTERACTION unreachable when the registry speaks HTTP and insecure is off', async () => {
    const { registry } = adapter({ insecure: false });
    await expectInteraction(registry.resolve(`${repo(host)}:v1`), 'unreachable');
  });

  it('should reject with the abort reason when the caller aborts', async () => {
    const reference = `${repo(host)}:v1`;
    const { registry } = adapter();
    const reason = new Error('client went away');
    await expect(registry.fetchScenario(reference, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  describe('with artifacts of other shapes', () => {
    it('should refuse a container image and say so', async () => {
      const reference = `${repo(host, 'examples/image')}:v1`;
      const digest = await pushContainerImage(reference);
      const { registry, parent } = adapter();

      await expectRefused(
        registry.fetchScenario(reference),
        'manifest config is application/vnd.oci.image.config.v1+json: a container image',
      );
      expectNothingWritten(parent, digest);
    });

    it('should refuse an untitled image filesystem layer even beside scenario files', async () => {
      const reference = `${repo(host)}:v1`;
      const file = Buffer.from('name: x\nruntime: nodejs\n');
      const layer = Buffer.from('rootfs');
      await uploadBlob(reference, Buffer.from('{}'));
      const digest = await putManifest(
        reference,
        manifestOf([
          {
            mediaType: FILE_TYPE,
            digest: await uploadBlob(reference, file),
            size: file.byteLength,
            annotations: { 'org.opencontainers.image.title': 'Pulumi.yaml' },
          },
          {
            mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
            digest: await uploadBlob(reference, layer),
            size: layer.byteLength,
          },
        ]),
      );
      const { registry, parent } = adapter();

      await expectRefused(
        registry.fetchScenario(reference),
        'layer 1 is a container image layer (application/vnd.docker.image.rootfs.diff.tar.gzip)',
      );
      expectNothingWritten(parent, digest);
    });

    it.each([
      ['ORAS 1.0 with the artifact type as config media type', ['--image-spec', 'v1.0'], true],
      ['ORAS 1.0 without any type', ['--image-spec', 'v1.0'], false],
      ['ORAS 1.1 without any type', [], false],
    ])('should pull what %s pushed', async (_case, flags, typed) => {
      const reference = `${repo(host)}:v1`;
      const dir = writeTree(SCENARIO);
      const files = Object.keys(SCENARIO)
        .sort()
        .map((f) => (typed ? `${f}:${FILE_TYPE}` : f));
      const type = typed ? ['--artifact-type', ARTIFACT_TYPE] : [];
      await oras(['push', '--plain-http', ...flags, ...type, reference, ...files], dir);
      const { registry } = adapter();

      expect(readTree((await registry.fetchScenario(reference)).directory)).toEqual(SCENARIO);
    });
  });

  describe('with hostile artifacts', () => {
    it.each([
      [
        'a title climbing out with ..',
        [{ title: '../../../escape', bytes: Buffer.from('x') }],
        `"../../../escape" contains a '..' segment`,
      ],
      [
        'a title climbing out from a subdirectory',
        [{ title: 'a/../../escape', bytes: Buffer.from('x') }],
        `"a/../../escape" contains a '..' segment`,
      ],
      [
        'an absolute title',
        [{ title: ABSOLUTE_ESCAPE, bytes: Buffer.from('x') }],
        'is an absolute path',
      ],
      ['an empty title', [{ title: '', bytes: Buffer.from('x') }], 'is empty'],
      ['a backslash title', [{ title: '..\\escape', bytes: Buffer.from('x') }], 'backslash'],
      [
        'a title that needs another title as its directory',
        [
          { title: 'a', bytes: Buffer.from('file') },
          { title: 'a/b', bytes: Buffer.from('through') },
        ],
        'also the directory of another title',
      ],
      [
        'a duplicated title',
        [
          { title: 'Pulumi.yaml', bytes: Buffer.from('one') },
          { title: 'Pulumi.yaml', bytes: Buffer.from('two') },
        ],
        '"Pulumi.yaml" is duplicated',
      ],
      [
        'a layer over the size limit',
        [{ title: 'big', bytes: Buffer.alloc(2048, 7) }],
        '"big" is 2048 bytes, more than the limit of 1024',
      ],
      [
        'a descriptor size smaller than the blob',
        [{ title: 'liar', bytes: Buffer.alloc(900, 1), size: 10 }],
        `"liar" is longer than its descriptor's 10 bytes`,
      ],
      [
        'a descriptor size larger than the blob',
        [{ title: 'liar', bytes: Buffer.alloc(10, 1), size: 900 }],
        '"liar" is 10 bytes, its descriptor says 900',
      ],
      [
        'too many layers',
        Array.from({ length: 5 }, (_, i) => ({ title: `f${i}`, bytes: Buffer.from(`${i}`) })),
        '5 layers, more than the limit of 4',
      ],
      [
        'a total over the limit',
        Array.from({ length: 3 }, (_, i) => ({ title: `f${i}`, bytes: Buffer.alloc(1000, i) })),
        'more than the limit of 2500 bytes',
      ],
    ])(
      'should refuse %s, say why and write nothing outside the cache',
      async (_case, layers, why) => {
        const reference = `${repo(host)}:v1`;
        const digest = await pushRaw(reference, layers);
        const { registry, parent } = adapter({
          limits: { maxLayerBytes: 1024, maxLayers: 4, maxTotalBytes: 2500 },
        });

        await expectRefused(registry.fetchScenario(reference), why);

        expectNothingWritten(parent, digest);
        expect(existsSync(ABSOLUTE_ESCAPE)).toBe(false);
      },
    );

    it('should refuse an image index and say it is not a scenario artifact', async () => {
      const name = repo(host);
      const { registry, parent } = adapter();
      const member = await registry.pushScenario(writeTree(SCENARIO), `${name}:member`);
      const base = `http://${host}/v2/${name.slice(host.length + 1)}`;
      const memberBytes = await fetch(`${base}/manifests/${member}`, {
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      }).then(async (r) => Buffer.from(await r.arrayBuffer()));
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: member,
              size: memberBytes.byteLength,
            },
          ],
        }),
      );
      const put = await fetch(`${base}/manifests/v1`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
        body: index,
      });
      expect(put.status).toBe(201);

      await expectRefused(registry.fetchScenario(`${name}:v1`), 'index of manifests');
      expectNothingWritten(parent, sha256(index));
    });

    it('should never resolve a title outside the entry when subdirectories are deep', async () => {
      const files = { 'a/b/c/d.txt': Buffer.from('deep'), 'a/e.txt': Buffer.from('side') };
      const reference = `${repo(host)}:v1`;
      await pushRaw(
        reference,
        Object.entries(files).map(([title, bytes]) => ({ title, bytes })),
      );
      const { registry, parent } = adapter();

      const fetched = await registry.fetchScenario(reference);

      expect(readTree(fetched.directory)).toEqual(files);
      const outside = listAll(parent).filter(
        (e) => !e.startsWith(join('cache', 'oci', fetched.digest.replace(':', '_'))),
      );
      expect(outside).toEqual(['cache', join('cache', 'oci')]);
    });
  });
});

describe('HttpOciRegistry during a registry outage', () => {
  it('should serve the recorded digest from the cache only when the registry cannot be reached', async () => {
    const own = await startRegistry();
    let running = true;
    try {
      const name = repo(own.endpoint);
      const reference = `${name}:v1`;
      const { registry, cacheDir } = adapter();
      const first = await registry.pushScenario(writeTree(SCENARIO), reference);
      await registry.fetchScenario(reference);

      // Reachable: a moved tag wins over the recorded digest.
      const changed = { ...SCENARIO, 'main.go': Buffer.from('package main // v2\n') };
      const second = await registry.pushScenario(writeTree(changed), reference);
      const moved = await registry.fetchScenario(reference, undefined, first);
      expect(moved.digest).toBe(second);
      expect(readTree(moved.directory)).toEqual(changed);

      await own.stop();
      running = false;
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const served = await registry.fetchScenario(reference, undefined, first);
        expect(served).toEqual({
          reference,
          digest: first,
          directory: join(cacheDir, 'oci', first.replace(':', '_')),
        });
        expect(readTree(served.directory)).toEqual(SCENARIO);
        expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(
          expect.stringContaining(`${reference}: registry unreachable`),
        );
        // A pinned digest is its own record.
        expect((await registry.fetchScenario(`${name}@${second}`)).digest).toBe(second);

        // Nothing recorded, or the recorded digest not in the cache: the outage is the answer.
        await expectInteraction(registry.fetchScenario(reference), 'unreachable');
        const { registry: cold } = adapter();
        await expectInteraction(cold.fetchScenario(reference, undefined, first), 'unreachable');
      } finally {
        warn.mockRestore();
      }
    } finally {
      if (running) await own.stop();
    }
  });
});

describe('HttpOciRegistry against a registry it cannot trust byte for byte', () => {
  let mimic: MimicRegistry;

  beforeAll(async () => {
    mimic = await startMimicRegistry();
  });
  afterAll(async () => {
    await mimic.stop();
  });

  function publish(name: string, files: Record<string, Buffer>, tamper?: string): string {
    const digest = mimic.publishFiles(name, 'v1', files);
    const bytes = tamper === undefined ? undefined : files[tamper];
    if (bytes) mimic.putBlob(sha256(bytes), Buffer.from(bytes.map((b) => b ^ 0xff)));
    return digest;
  }

  it('should refuse a blob whose bytes do not match its digest and leave no entry', async () => {
    const digest = publish('tampered', SCENARIO, 'main.go');
    const { registry, parent } = adapter();

    await expectRefused(
      registry.fetchScenario(`${mimic.endpoint}/tampered:v1`),
      `layer "main.go" content is sha256:`,
    );

    expectNothingWritten(parent, digest);
  });

  it('should download once when concurrent fetches ask for one digest', async () => {
    publish('shared', SCENARIO);
    const { registry } = adapter();
    const before = mimic.blobGets();
    mimic.setBlobDelay(100);
    try {
      const results = await Promise.all(
        Array.from({ length: 5 }, () => registry.fetchScenario(`${mimic.endpoint}/shared:v1`)),
      );
      expect(new Set(results.map((r) => r.directory)).size).toBe(1);
      expect(mimic.blobGets() - before).toBe(Object.keys(SCENARIO).length);
      expect(readTree(results[0]!.directory)).toEqual(SCENARIO);

      await registry.fetchScenario(`${mimic.endpoint}/shared:v1`);
      expect(mimic.blobGets() - before).toBe(Object.keys(SCENARIO).length);
    } finally {
      mimic.setBlobDelay(0);
    }
  });

  it('should leave no temp entry when the only caller aborts mid-download', async () => {
    const digest = publish('slow', SCENARIO);
    const { registry, parent, cacheDir } = adapter();
    mimic.setBlobDelay(2_000);
    try {
      const controller = new AbortController();
      const pending = registry.fetchScenario(`${mimic.endpoint}/slow:v1`, controller.signal);
      await vi.waitFor(() => expect(listAll(parent).length).toBeGreaterThanOrEqual(3), {
        timeout: 10_000,
        interval: 20,
      });
      expect(readdirSync(join(cacheDir, 'oci')).some((e) => e.startsWith('.tmp-'))).toBe(true);
      controller.abort(new Error('cancelled'));
      await expect(pending).rejects.toThrow('cancelled');
      await vi.waitFor(() => expectNothingWritten(parent, digest), {
        timeout: 10_000,
        interval: 20,
      });
    } finally {
      mimic.setBlobDelay(0);
    }
  });

  it('should cut off a registry that drips bytes within the request timeout and leave no entry', async () => {
    const digest = publish('dripping', { 'Pulumi.yaml': Buffer.alloc(67, 0x61) });
    const { registry, parent } = adapter({ requestTimeoutMs: 1_000, transferTimeoutMs: 2_000 });
    mimic.setBlobDrip(100);
    try {
      const err = await expectInteraction(
        registry.fetchScenario(`${mimic.endpoint}/dripping:v1`),
        'unreachable',
      );
      expect((err.cause as Error).name).toBe('TransferTimeoutError');
      await vi.waitFor(() => expectNothingWritten(parent, digest), {
        timeout: 10_000,
        interval: 20,
      });
    } finally {
      mimic.setBlobDrip(0);
    }
  });

  it('should throw OCI_INTERACTION unreachable when the registry stops answering in time', async () => {
    publish('stalled', SCENARIO);
    const { registry } = adapter({ requestTimeoutMs: 200 });
    mimic.setBlobDelay(1_000);
    try {
      await expectInteraction(
        registry.fetchScenario(`${mimic.endpoint}/stalled:v1`),
        'unreachable',
      );
    } finally {
      mimic.setBlobDelay(0);
    }
  });
});

describe.each([
  ['basic', 'basic auth'],
  ['token', 'bearer token'],
] as const)('HttpOciRegistry against a %s-auth registry', (mode, label) => {
  let service: RunningService | TokenAuthRegistry;
  const creds = ['-u', USER, '-p', PASS];

  beforeAll(async () => {
    if (mode === 'basic') {
      const htpasswd = execFileSync('htpasswd', ['-Bbn', USER, PASS], { encoding: 'utf8' });
      service = await startRegistry({ htpasswd });
    } else {
      service = await startTokenAuthRegistry({ username: USER, password: PASS });
    }
  });
  afterAll(async () => {
    await service.stop();
  });

  it(`should round-trip with the oras CLI both ways when ${label} credentials are right`, async () => {
    const { registry } = adapter({ username: USER, password: PASS });
    const orasRef = `${repo(service.endpoint)}:v1`;
    await orasPush(orasRef, writeTree(SCENARIO), creds);
    expect(readTree((await registry.fetchScenario(orasRef)).directory)).toEqual(SCENARIO);

    const ourRef = `${repo(service.endpoint)}:v1`;
    const digest = await registry.pushScenario(writeTree(SCENARIO), ourRef);
    expect(await orasPull(ourRef, creds)).toEqual(SCENARIO);
    expect(await registry.resolve(ourRef)).toBe(digest);
  });

  it(`should throw OCI_INTERACTION unauthorized when ${label} credentials are wrong or missing`, async () => {
    const reference = `${repo(service.endpoint)}:v1`;
    await orasPush(reference, writeTree(SCENARIO), creds);

    const wrong = adapter({ username: USER, password: 'wrong' });
    await expectInteraction(wrong.registry.resolve(reference), 'unauthorized');
    await expectInteraction(wrong.registry.fetchScenario(reference), 'unauthorized');
    await expectInteraction(
      wrong.registry.pushScenario(writeTree(SCENARIO), `${repo(service.endpoint)}:v1`),
      'unauthorized',
    );
    expect(listAll(wrong.parent)).toEqual([]);

    const anonymous = adapter();
    await expectInteraction(anonymous.registry.resolve(reference), 'unauthorized');
  });

  if (mode === 'token') {
    it('should reuse cached tokens when one adapter makes repeated requests', async () => {
      const token = service as TokenAuthRegistry;
      const reference = `${repo(service.endpoint)}:v1`;
      const { registry } = adapter({ username: USER, password: PASS });
      await registry.pushScenario(writeTree(SCENARIO), reference);
      await registry.resolve(reference);
      const before = token.tokensIssued();
      expect(before).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) await registry.resolve(reference);
      expect(token.tokensIssued()).toBe(before);
    });
  }
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { FsStateStore } from '../../src/adapters/state/fs-state-store.adapter';
import { eventually, jsonInit, readBanner, tcpClosed, timestampMs } from '../support/api-app';
import { gatedUpScenario } from '../support/api-scenarios';
import {
  buildImage,
  imageSize,
  run,
  startContainer,
  type Container,
  type ContainerProcess,
} from '../support/container';
import { connectApiClients, type ApiClients } from '../support/grpc-client';
import { orasPush } from '../support/oras';
import { EXAMPLES, scenarioOf } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * The container image as an operator runs it: built by `scripts/image.sh build` (the Dockerfile,
 * with local stand-ins for the official base images), started by `scripts/image.sh run` (podman)
 * with etcd and the registry on loopback and a read-only root filesystem, then the API over REST
 * and gRPC against it: a nodejs instance whose TCP service answers its flag, and a Go instance
 * compiled from `main.go` by the Go toolchain inside the image. Every process in the container
 * runs as uid 65532, and the init reaps what Pulumi and the scenarios leave: no zombie, no plugin
 * left once the work is done. A SIGTERM during a create leaves no stack behind after a restart.
 */

const IMAGE = 'localhost/chall-manager:e2e';
const SLIM = 'localhost/chall-manager:e2e-slim';
const UID = 65532;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

let scratch: string;
let markers: string;
let nodejsScenario: string;
let goScenario: string;
let gatedScenario: string;
let etcdEndpoint: string;
const containers: Container[] = [];
const clients: ApiClients[] = [];

/** A directory the container's user owns (bind mounts keep host ownership). */
function ownedDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, UID, UID);
  return path;
}

/**
 * Go modules come from the host's module cache when it has them (a read-only file proxy in front
 * of the usual one): what CI measures is compiling in the image, not downloading ~100 modules.
 */
function goProxyOptions(): { env: Record<string, string>; options: string[] } {
  const download = join(
    execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim(),
    'cache',
    'download',
  );
  const upstream = execFileSync('go', ['env', 'GOPROXY'], { encoding: 'utf8' }).trim();
  if (!existsSync(download)) return { env: { GOPROXY: upstream }, options: [] };
  return {
    env: { GOPROXY: `file:///go-proxy,${upstream}` },
    options: ['-v', `${download}:/go-proxy:ro`],
  };
}

async function start(
  name: string,
  data: string,
  env: Record<string, string> = {},
): Promise<Container> {
  const goProxy = goProxyOptions();
  const container = await startContainer({
    name: `cm-e2e-${process.pid}-${name}`,
    image: IMAGE,
    data,
    cache: ownedDir(join(scratch, `cache-${name}`)),
    env: {
      ETCD_ENDPOINT: etcdEndpoint,
      // The sweep at boot and no other: none runs in the middle of a test.
      JANITOR_TICKER: '1h',
      IAC_TIMEOUT: '4m',
      // The first main.go compiles the Pulumi Go SDK with an empty build cache, on 2 shared cores.
      IAC_COMPILE_TIMEOUT: '10m',
      ...goProxy.env,
      ...env,
    },
    options: [
      // As deploy/ runs it: a read-only root filesystem, HOME a writable volume of its own
      // (podman's --read-only already gives /tmp a tmpfs).
      '--read-only',
      '-v',
      `${ownedDir(join(scratch, `home-${name}`))}:/home/chall-manager`,
      // The gated scenario's markers, at the same path on both sides.
      '-v',
      `${markers}:${markers}`,
      ...goProxy.options,
    ],
  });
  containers.push(container);
  return container;
}

function grpcOf(container: Container): ApiClients {
  const c = connectApiClients(container.address);
  clients.push(c);
  return c;
}

const describeProcesses = (ps: ContainerProcess[]): string =>
  ps.map((p) => `${p.pid} ${p.state} uid=${p.uids.join(',')} ${p.cmdline}`).join('\n');

/** Once the work is done: the init and the service, nothing else (no plugin, no zombie). */
async function onlyInitAndService(container: Container): Promise<ContainerProcess[]> {
  let ps: ContainerProcess[] = [];
  await eventually(
    'only tini and the service left in the container',
    30_000,
    async () => {
      ps = await container.processes();
      return ps.length === 2;
    },
    () => describeProcesses(ps),
  );
  expect(ps.map((p) => p.cmdline)).toEqual([
    '/usr/bin/tini -- node --max-semi-space-size=4 dist/main.js',
    'node --max-semi-space-size=4 dist/main.js',
  ]);
  return ps;
}

beforeAll(async () => {
  useToolchainPath();
  etcdEndpoint = inject('etcdEndpoint');
  scratch = mkdtempSync(join(tmpdir(), 'cm-container-'));
  // The scenarios' dynamic providers run as the container's user and write markers here.
  markers = join(scratch, 'markers');
  mkdirSync(markers);
  chmodSync(markers, 0o777);
  const registry = inject('registry');
  const t0 = Date.now();
  const built = await buildImage('full', IMAGE);
  const builtSlim = await buildImage('slim', SLIM);
  console.log(
    `[container] image build ${Math.round((Date.now() - t0) / 1000)} s; full ${Math.round((await imageSize(IMAGE)) / 1e6)} MB, slim ${Math.round((await imageSize(SLIM)) / 1e6)} MB\n${built}\n${builtSlim}`,
  );
  [nodejsScenario, goScenario, gatedScenario] = await Promise.all([
    orasPush(registry, 'container/nodejs-flag-server:v1', join(EXAMPLES, 'nodejs-flag-server')),
    orasPush(registry, 'container/go-minimal:v1', join(EXAMPLES, 'go-minimal')),
    orasPush(
      registry,
      'container/gated-up:v1',
      scenarioOf(scratch, 'gated', gatedUpScenario(markers)),
    ),
  ]);
}, 60 * 60_000);

afterEach(async () => {
  rmSync(join(markers, 'hold'), { force: true });
  for (const c of clients.splice(0)) c.close();
  await Promise.all(containers.splice(0).map((c) => c.remove()));
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the container image', () => {
  it('should hold Pulumi and its hosts in both targets, and the Go toolchain only in full', async () => {
    const PROBE_VOLUMES = ['--data', 'cm-e2e-probe-data', '--cache', 'cm-e2e-probe-cache'];
    const inImage = async (image: string, script: string): Promise<string> =>
      (
        await run('bash', [
          'scripts/image.sh',
          'run',
          '--tag',
          image,
          ...PROBE_VOLUMES,
          '--',
          'sh',
          '-c',
          script,
        ])
      ).stdout.trim();
    const tools =
      'id -u; for t in pulumi pulumi-language-nodejs pulumi-language-go pulumi-resource-pulumi-nodejs node go; do command -v $t || echo "no $t"; done';
    expect((await inImage(IMAGE, tools)).split('\n')).toEqual([
      String(UID),
      '/opt/pulumi/bin/pulumi',
      '/opt/pulumi/bin/pulumi-language-nodejs',
      '/opt/pulumi/bin/pulumi-language-go',
      '/opt/pulumi/bin/pulumi-resource-pulumi-nodejs',
      '/usr/local/bin/node',
      '/usr/local/go/bin/go',
    ]);
    expect((await inImage(SLIM, tools)).split('\n').slice(-1)).toEqual(['no go']);
    expect(await inImage(IMAGE, 'pulumi version; node --version; go env GOTOOLCHAIN')).toMatch(
      /^v3\.\d+\.\d+\nv24\.\d+\.\d+\nlocal$/,
    );
    await run('podman', ['volume', 'rm', '--force', 'cm-e2e-probe-data', 'cm-e2e-probe-cache']);
  });

  it(
    'should serve the API lifecycle over REST and gRPC, nodejs and Go (main.go) scenarios, as uid 65532 with nothing left behind',
    async () => {
      const c = await start('lifecycle', ownedDir(join(scratch, 'data-lifecycle')));
      const processes = await c.processes();
      expect(
        processes.map((p) => p.uids),
        describeProcesses(processes),
      ).toEqual(processes.map(() => [UID, UID, UID, UID]));

      // REST: the nodejs example, a real TCP service answering its flag.
      const rest = async (path: string, init?: RequestInit): Promise<Record<string, unknown>> => {
        const res = await fetch(`${c.base}${path}`, init);
        const text = await res.text();
        expect(res.status, `${path}: ${text}\n${c.output()}`).toBe(200);
        return JSON.parse(text) as Record<string, unknown>;
      };
      await rest(
        '/api/v1/challenge',
        jsonInit('POST', { id: 'node', scenario: nodejsScenario, timeout: '600s' }),
      );
      const created = await rest(
        '/api/v1/instance',
        jsonInit('POST', { challengeId: 'node', sourceId: 'team' }),
      );
      const flags = created.flags as string[];
      expect(flags[0]).toMatch(/^CTF\{[0-9a-f]{24}\}$/);
      expect(await readBanner(created.connectionInfo as string)).toBe(flags[0]);
      const renewed = await rest('/api/v1/instance/node/team', jsonInit('PATCH', {}));
      expect(Date.parse(renewed.until as string)).toBeGreaterThanOrEqual(
        Date.parse(created.until as string),
      );
      expect(await rest('/api/v1/instance/node/team', { method: 'DELETE' })).toEqual({});
      expect(await tcpClosed(created.connectionInfo as string)).toBe(true);

      // gRPC: the Go example, compiled from main.go inside the image.
      const grpc = grpcOf(c);
      await grpc.unary(
        grpc.challenge,
        'CreateChallenge',
      )({ id: 'go', scenario: goScenario, timeout: { seconds: 600 } });
      const goInstance = await grpc.unary(
        grpc.instance,
        'CreateInstance',
      )({ challengeId: 'go', sourceId: 'team' });
      expect(goInstance.connectionInfo).toMatch(/^https:\/\/[0-9a-f]{16}\.go-minimal\.example$/);
      expect(goInstance.flag).toMatch(/^CTF\{[0-9a-f]{24}\}$/);
      const goRenewed = await grpc.unary(
        grpc.instance,
        'RenewInstance',
      )({ challengeId: 'go', sourceId: 'team' });
      expect(timestampMs(goRenewed.until)).toBeGreaterThanOrEqual(timestampMs(goInstance.until));
      await grpc.unary(grpc.instance, 'DeleteInstance')({ challengeId: 'go', sourceId: 'team' });
      for (const id of ['go', 'node']) await grpc.unary(grpc.challenge, 'DeleteChallenge')({ id });
      expect(await grpc.stream(grpc.challenge, 'QueryChallenge')({})).toEqual([]);

      // Pulumi's plugins and the flag server (detached, reparented to the init) are gone and reaped.
      const left = await onlyInitAndService(c);
      expect(left.filter((p) => p.state === 'Z')).toEqual([]);

      await c.signal('TERM');
      expect(await c.exitCode(60_000)).toBe(0);
    },
    20 * 60_000,
  );

  it('should leave no stack behind after a SIGTERM during a create and a restart', async () => {
    const data = ownedDir(join(scratch, 'data-sigterm'));
    const a = await start('sigterm-a', data, { SHUTDOWN_GRACE: '1s', IAC_CANCEL_GRACE: '2s' });
    const challenge = await fetch(
      `${a.base}/api/v1/challenge`,
      jsonInit('POST', { id: 'gated', scenario: gatedScenario, timeout: '600s' }),
    );
    expect(challenge.status, await challenge.text()).toBe(200);
    writeFileSync(join(markers, 'hold'), '');
    const create = fetch(
      `${a.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'gated', sourceId: 's' }),
    );
    await eventually(
      'the up in progress',
      120_000,
      () => Promise.resolve(readdirSync(markers).some((f) => f.startsWith('started-'))),
      () => a.output(),
    );

    await a.signal('TERM');
    const res = await create;
    expect(res.status, await res.clone().text()).not.toBe(200);
    expect(await a.exitCode(90_000)).toBe(0);

    const b = await start('sigterm-b', data);
    expect((await fetch(`${b.base}/api/v1/instance/gated/s`)).status).toBe(404);
    expect(await new FsStateStore({ dir: data }).listInstances('gated')).toEqual([]);
    const stacks = join(data, 'pulumi', 'stacks', md5('gated'));
    expect(existsSync(stacks) ? readdirSync(stacks) : []).toEqual([]);
    const left = await onlyInitAndService(b);
    expect(left.filter((p) => p.state === 'Z')).toEqual([]);
  });
});

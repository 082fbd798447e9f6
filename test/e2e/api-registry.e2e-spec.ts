import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import { bootApiApp, grpcError, grpcStatusOf, jsonInit, type ApiApp } from '../support/api-app';
import { identityOfOutputsOnly, outputsOnlyScenario } from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { pushContainerImage, putManifest, uploadBlob } from '../support/raw-oci';
import { scenarioOf } from '../support/scenarios';
import { startMimicRegistry, type MimicRegistry } from '../support/mimic-registry';
import { startRegistry } from '../support/services';

/**
 * The service against registries that fail or serve what is not a scenario: the client is told
 * what is wrong with the artifact (a 4xx, never a bare 500) and the operator's log says it too.
 */

const T = 'type.googleapis.com/google.rpc.';
const FILE_TYPE = 'application/vnd.ctfer-io.file';

let svc: ApiApp;
let registry: string;

const rest = (method: string, path: string, body?: unknown): Promise<Response> =>
  svc.rest(path, jsonInit(method, body));
const challengeRpc = (method: string, req: object): Promise<unknown> =>
  svc.grpc.unary(svc.grpc.challenge, method)(req);

/** A scenario whose one file is titled `../escape`, pushed as a hostile author could. */
async function pushClimbingTitle(reference: string): Promise<void> {
  const bytes = Buffer.from('x');
  const empty = await uploadBlob(reference, Buffer.from('{}'));
  await putManifest(reference, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.ctfer-io.scenario',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
    layers: [
      {
        mediaType: FILE_TYPE,
        digest: await uploadBlob(reference, bytes),
        size: 1,
        annotations: { 'org.opencontainers.image.title': '../escape' },
      },
    ],
  });
}

/**
 * CreateChallenge on both transports answers SCENARIO_NON_MATCHING_SPECIFICATION (400) whose
 * validation text contains `why`, creates nothing, and logs the same reason.
 */
async function expectRefusedArtifact(id: string, scenario: string, why: string): Promise<void> {
  const warn = vi.spyOn(Logger.prototype, 'warn');
  try {
    const res = await rest('POST', '/api/v1/challenge', { id, scenario });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    const status = JSON.parse(text) as RpcStatusJson;
    expect(status).toMatchObject({ code: 3, message: 'Scenario does not match specification.' });
    expect(status.details[0]).toMatchObject({
      '@type': `${T}ErrorInfo`,
      reason: 'SCENARIO_NON_MATCHING_SPECIFICATION',
      metadata: { reference: scenario },
    });
    const validation = status.details.find((d) => d['@type'] === `${T}BadRequest`) as
      { fieldViolations: { field: string; reason: string; description: string }[] } | undefined;
    expect(validation?.fieldViolations[0]).toMatchObject({
      field: 'scenario',
      reason: 'VALIDATION',
    });
    expect(validation?.fieldViolations[0]?.description).toContain(why);

    const err = await grpcError(challengeRpc('CreateChallenge', { id, scenario }));
    expect([err.code, err.details]).toEqual([3, 'Scenario does not match specification.']);
    expect(grpcStatusOf(err)).toEqual(status);

    expect((await rest('GET', `/api/v1/challenge/${id}`)).status).toBe(404);
    expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringContaining(`refused the scenario ${scenario}: OCI artifact refused: `),
    );
    expect(
      warn.mock.calls.some((c) => String(c[0]).includes(scenario) && String(c[0]).includes(why)),
    ).toBe(true);
  } finally {
    warn.mockRestore();
  }
}

beforeAll(async () => {
  svc = await bootApiApp({ JANITOR_TICKER: '0', LOG_LEVEL: 'warn' });
  registry = inject('registry');
});
afterAll(async () => {
  await svc?.close();
});

describe('artifacts that are not scenarios', () => {
  it('should answer 400 naming the title when a layer title climbs out with ..', async () => {
    const reference = `${registry}/registry-api/climbing:v1`;
    await pushClimbingTitle(reference);
    await expectRefusedArtifact('climbing', reference, `"../escape" contains a '..' segment`);
  });

  it('should answer 400 saying it is a container image when the reference names one', async () => {
    const reference = `${registry}/registry-api/image:v1`;
    await pushContainerImage(reference);
    await expectRefusedArtifact('image', reference, 'a container image, not a scenario');
  });

  it('should create the challenge when ORAS pushed the scenario untyped', async () => {
    const dir = scenarioOf(svc.scratch, 'untyped', outputsOnlyScenario('untyped'));
    const reference = await orasPush(registry, 'registry-api/untyped:v1', dir, { typed: false });
    const res = await rest('POST', '/api/v1/challenge', { id: 'untyped', scenario: reference });
    expect(res.status, await res.text()).toBe(200);
    expect((await rest('DELETE', '/api/v1/challenge/untyped')).status).toBe(200);
  });
});

describe('a registry outage', () => {
  it('should create instances from the cached scenario at the recorded digest when the registry is down', async () => {
    const own = await startRegistry();
    let running = true;
    try {
      const dir = scenarioOf(svc.scratch, 'outage', outputsOnlyScenario('outage'));
      const scenario = await orasPush(own.endpoint, 'registry-api/outage:v1', dir);
      const created = await rest('POST', '/api/v1/challenge', { id: 'outage', scenario });
      expect(created.status, await created.text()).toBe(200);

      await own.stop();
      running = false;
      const warn = vi.spyOn(Logger.prototype, 'warn');
      try {
        const res = await rest('POST', '/api/v1/instance', {
          challengeId: 'outage',
          sourceId: 'during-outage',
        });
        const text = await res.text();
        expect(res.status, text).toBe(200);
        const instance = JSON.parse(text) as { connectionInfo: string };
        expect(identityOfOutputsOnly(instance.connectionInfo)).toMatch(/^[0-9a-f]{16}$/);
        expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(
          expect.stringContaining(`${scenario}: registry unreachable`),
        );
      } finally {
        warn.mockRestore();
      }
      expect((await rest('DELETE', '/api/v1/instance/outage/during-outage')).status).toBe(200);
      expect((await rest('DELETE', '/api/v1/challenge/outage')).status).toBe(200);
    } finally {
      if (running) await own.stop();
    }
  });
});

describe('a slow registry', () => {
  let mimic: MimicRegistry;
  const files = (variant: string): Record<string, Buffer> =>
    Object.fromEntries(
      Object.entries(outputsOnlyScenario(variant)).map(([path, text]) => [path, Buffer.from(text)]),
    );

  beforeAll(async () => {
    mimic = await startMimicRegistry();
  });
  afterAll(async () => {
    await mimic?.stop();
  });

  it('should hold no lock while a create pulls: the same id can be created meanwhile', async () => {
    mimic.publishFiles('slow/outputs', 'v1', files('slow'));
    const stuckScenario = `${mimic.endpoint}/slow/outputs:v1`;
    const dir = scenarioOf(svc.scratch, 'contended', outputsOnlyScenario('contended'));
    const good = await orasPush(registry, 'registry-api/contended:v1', dir);
    const before = mimic.blobGets();
    mimic.holdBlobs();
    try {
      const stuck = rest('POST', '/api/v1/challenge', { id: 'contended', scenario: stuckScenario });
      await vi.waitFor(() => expect(mimic.blobGets()).toBeGreaterThan(before), {
        timeout: 10_000,
        interval: 20,
      });

      // The first create is still pulling (its blobs are held): the id's lock must be free.
      const res = await rest('POST', '/api/v1/challenge', { id: 'contended', scenario: good });
      expect(res.status, await res.text()).toBe(200);
      mimic.releaseBlobs();
      const first = await stuck;
      expect(first.status, await first.text()).toBe(409);
      const got = (await (await rest('GET', '/api/v1/challenge/contended')).json()) as {
        scenario: string;
      };
      expect(got.scenario).toBe(good);
    } finally {
      mimic.releaseBlobs();
    }
    expect((await rest('DELETE', '/api/v1/challenge/contended')).status).toBe(200);
  });

  it('should answer OCI_INTERACTION unreachable when the registry drips bytes past OCI_TRANSFER_TIMEOUT', async () => {
    const bounded = await bootApiApp({
      JANITOR_TICKER: '0',
      OCI_TIMEOUT: '5s',
      OCI_TRANSFER_TIMEOUT: '2s',
    });
    mimic.publishFiles('slow/drip', 'v1', { 'Pulumi.yaml': Buffer.alloc(67, 0x61) });
    mimic.setBlobDrip(200);
    try {
      const scenario = `${mimic.endpoint}/slow/drip:v1`;
      const res = await bounded.rest(
        '/api/v1/challenge',
        jsonInit('POST', { id: 'drip', scenario }),
      );
      const text = await res.text();
      expect(res.status, text).toBe(400);
      expect(JSON.parse(text)).toMatchObject({
        code: 9,
        message: 'Registry is not available. You might want to try again later.',
        details: [{ reason: 'OCI_INTERACTION', metadata: { reference: scenario } }, {}],
      });
      expect((await bounded.rest('/api/v1/challenge/drip')).status).toBe(404);
    } finally {
      mimic.setBlobDrip(0);
      await bounded.close();
    }
  });
});

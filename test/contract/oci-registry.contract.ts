import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciReferenceMalformedError, OciReferenceNotFoundError } from '../../src/shared/errors';
import type { OciRegistry } from '../../src/shared/ports/oci-registry.port';

/** A registry adapter and a way to publish scenarios where it looks. */
export interface OciRegistryUnderTest {
  registry: OciRegistry;
  /** `<registry host>/`: references the contract builds start with it. */
  host: string;
  /**
   * Publishes `files` (relative path → text) as a scenario at `reference` (moving its tag if
   * it exists) and returns the digest of the manifest pushed.
   */
  publish: (reference: string, files: Record<string, string>) => Promise<string>;
  cleanup: () => Promise<void>;
}

const SHA256 = /^sha256:[0-9a-f]{64}$/;

const scenarioFiles = (marker: string): Record<string, string> => ({
  'Pulumi.yaml': 'name: contract\nruntime: nodejs\n',
  'index.js': `exports.connection_info = ${JSON.stringify(marker)};\n`,
});

/**
 * The promised behaviour of {@link OciRegistry} that the services build on, for every adapter:
 * the InMemoryOciRegistry of the unit tests from its unit spec, the HTTP adapter against the
 * registry the e2e run starts from its e2e spec. Each test publishes under a fresh repository.
 */
export function ociRegistryContract(name: string, make: () => Promise<OciRegistryUnderTest>): void {
  describe(`${name} (OciRegistry contract)`, () => {
    let subject: OciRegistryUnderTest;
    let registry: OciRegistry;

    beforeAll(async () => {
      subject = await make();
      registry = subject.registry;
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    /** A repository nobody pushed to yet. */
    const aRepository = (): string => `${subject.host}/contract/s-${randomUUID()}`;

    describe('checkReference', () => {
      it('should accept a reference with a tag, with a digest and with neither', () => {
        const repository = aRepository();
        for (const reference of [
          `${repository}:v1`,
          `${repository}@sha256:${'a'.repeat(64)}`,
          repository,
        ]) {
          expect(() => registry.checkReference(reference)).not.toThrow();
        }
      });

      it('should throw OciReferenceMalformedError when the reference does not parse', () => {
        for (const reference of ['', 'has space/x:v1', `${subject.host}/UPPER:v1`, 'x@sha256:zz']) {
          expect(() => registry.checkReference(reference), reference).toThrow(
            OciReferenceMalformedError,
          );
        }
      });
    });

    describe('resolve', () => {
      it('should answer the digest of the manifest the tag names', async () => {
        const reference = `${aRepository()}:v1`;
        const digest = await subject.publish(reference, scenarioFiles('one'));
        expect(digest).toMatch(SHA256);
        await expect(registry.resolve(reference)).resolves.toBe(digest);
      });

      it('should see a re-pushed tag at once, and still find the old manifest by its digest', async () => {
        const repository = aRepository();
        const first = await subject.publish(`${repository}:v1`, scenarioFiles('first'));
        await expect(registry.resolve(`${repository}:v1`)).resolves.toBe(first);
        const second = await subject.publish(`${repository}:v1`, scenarioFiles('second'));
        expect(second).not.toBe(first);
        await expect(registry.resolve(`${repository}:v1`)).resolves.toBe(second);
        await expect(registry.resolve(`${repository}@${first}`)).resolves.toBe(first);
      });

      it('should read a reference without a tag as :latest', async () => {
        const repository = aRepository();
        const digest = await subject.publish(`${repository}:latest`, scenarioFiles('latest'));
        await expect(registry.resolve(repository)).resolves.toBe(digest);
      });

      it('should reject with OciReferenceNotFoundError when the tag or the repository is unknown', async () => {
        const repository = aRepository();
        await subject.publish(`${repository}:v1`, scenarioFiles('known'));
        for (const reference of [`${repository}:nope`, `${aRepository()}:v1`]) {
          await expect(registry.resolve(reference), reference).rejects.toBeInstanceOf(
            OciReferenceNotFoundError,
          );
        }
      });

      it('should reject (not throw) with OciReferenceMalformedError when the reference does not parse', async () => {
        await expect(registry.resolve('has space/x:v1')).rejects.toBeInstanceOf(
          OciReferenceMalformedError,
        );
      });

      it('should reject with the abort reason when the signal is already aborted', async () => {
        const reference = `${aRepository()}:v1`;
        await subject.publish(reference, scenarioFiles('aborted'));
        const reason = new Error('client went away');
        await expect(registry.resolve(reference, AbortSignal.abort(reason))).rejects.toBe(reason);
      });
    });

    describe('fetchScenario', () => {
      it('should answer the reference as given, the digest resolve answers, and a directory holding the files', async () => {
        const reference = `${aRepository()}:v1`;
        const files = scenarioFiles('fetched');
        const digest = await subject.publish(reference, files);
        const fetched = await registry.fetchScenario(reference);
        expect(fetched).toMatchObject({ reference, digest });
        for (const [path, content] of Object.entries(files)) {
          expect(readFileSync(join(fetched.directory, path), 'utf8')).toBe(content);
        }
      });

      it('should answer one directory per digest, however many times and at once it is asked', async () => {
        const reference = `${aRepository()}:v1`;
        await subject.publish(reference, scenarioFiles('shared'));
        const [a, b] = await Promise.all([
          registry.fetchScenario(reference),
          registry.fetchScenario(reference),
        ]);
        const c = await registry.fetchScenario(reference);
        expect(new Set([a.directory, b.directory, c.directory]).size).toBe(1);
        expect(existsSync(join(a.directory, 'Pulumi.yaml'))).toBe(true);
      });

      it('should fetch the files of the new digest when the tag was re-pushed', async () => {
        const reference = `${aRepository()}:v1`;
        await subject.publish(reference, scenarioFiles('before'));
        const first = await registry.fetchScenario(reference);
        const digest = await subject.publish(reference, scenarioFiles('after'));
        const second = await registry.fetchScenario(reference);
        expect(second.digest).toBe(digest);
        expect(second.directory).not.toBe(first.directory);
        expect(readFileSync(join(second.directory, 'index.js'), 'utf8')).toContain('after');
        // What was fetched before stays as it was (another instance may be deploying from it).
        expect(readFileSync(join(first.directory, 'index.js'), 'utf8')).toContain('before');
      });

      it('should reject with OciReferenceNotFoundError when the reference names nothing', async () => {
        await expect(registry.fetchScenario(`${aRepository()}:v1`)).rejects.toBeInstanceOf(
          OciReferenceNotFoundError,
        );
      });

      it('should reject (not throw) with OciReferenceMalformedError when the reference does not parse', async () => {
        await expect(registry.fetchScenario('')).rejects.toBeInstanceOf(OciReferenceMalformedError);
      });

      it('should reject with the abort reason when the signal is already aborted', async () => {
        const reference = `${aRepository()}:v1`;
        await subject.publish(reference, scenarioFiles('aborted'));
        const reason = new Error('deadline exceeded');
        await expect(registry.fetchScenario(reference, AbortSignal.abort(reason))).rejects.toBe(
          reason,
        );
      });
    });
  });
}

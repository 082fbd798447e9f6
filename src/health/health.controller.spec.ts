import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HEALTH_INDICATORS, HealthIndicator } from '../shared/ports/health-indicator.port';
import { DrainState } from '../shared/transport/drain';
import { HEALTH_CHECK_TIMEOUT_MS, HealthController } from './health.controller';

/** An indicator whose answer the test chooses. */
class FakeIndicator implements HealthIndicator {
  calls = 0;
  constructor(
    readonly name: string,
    private readonly answer: () => Promise<void>,
    readonly critical?: boolean,
  ) {}

  check(): Promise<void> {
    this.calls += 1;
    return this.answer();
  }
}

const ok = (name: string): FakeIndicator => new FakeIndicator(name, () => Promise.resolve());
const failing = (name: string, message: string, critical?: boolean): FakeIndicator =>
  new FakeIndicator(name, () => Promise.reject(new Error(message)), critical);

describe('HealthController', () => {
  describe('measure', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('should report OK without failures when no indicator is bound', async () => {
      const report = await new HealthController().measure();
      expect(report.status).toBe('OK');
      expect(report).not.toHaveProperty('failures');
      expect(report.component.name).toBe('chall-manager');
    });

    it('should report OK without failures when every indicator passes', async () => {
      const indicators = [ok('etcd'), ok('other')];
      const report = await new HealthController(indicators).measure();
      expect(report.status).toBe('OK');
      expect(report).not.toHaveProperty('failures');
      expect(indicators.map((i) => i.calls)).toEqual([1, 1]);
    });

    it("should report Unavailable with the check's message when an indicator fails", async () => {
      const report = await new HealthController([
        ok('other'),
        failing('etcd', 'lock service unavailable: connection refused'),
      ]).measure();
      expect(report.status).toBe('Unavailable');
      expect(report.failures).toEqual({ etcd: 'lock service unavailable: connection refused' });
    });

    it('should report Partially Available with the failure when only a non-critical indicator fails', async () => {
      const report = await new HealthController([
        ok('etcd'),
        failing('pulumi', '1 resource(s) whose creation was interrupted', false),
      ]).measure();
      expect(report.status).toBe('Partially Available');
      expect(report.failures).toEqual({ pulumi: '1 resource(s) whose creation was interrupted' });
    });

    it('should report Unavailable when a critical and a non-critical indicator fail', async () => {
      const report = await new HealthController([
        failing('etcd', 'no quorum'),
        failing('pulumi', 'lost', false),
      ]).measure();
      expect(report.status).toBe('Unavailable');
      expect(report.failures).toEqual({ etcd: 'no quorum', pulumi: 'lost' });
    });

    it('should report every failing indicator when several fail', async () => {
      const report = await new HealthController([
        failing('a', 'down'),
        failing('b', 'gone'),
      ]).measure();
      expect(report.failures).toEqual({ a: 'down', b: 'gone' });
    });

    it('should report a failure when an indicator throws synchronously', async () => {
      const sync = new FakeIndicator('etcd', () => {
        throw new Error('sync boom');
      });
      const report = await new HealthController([sync]).measure();
      expect(report.failures).toEqual({ etcd: 'sync boom' });
    });

    it("should report health-go's timeout text when an indicator overruns its budget", async () => {
      vi.useFakeTimers();
      const hung = new FakeIndicator('etcd', () => new Promise<void>(() => undefined));
      const pending = new HealthController([hung, ok('other')]).measure();
      await vi.advanceTimersByTimeAsync(HEALTH_CHECK_TIMEOUT_MS);
      const report = await pending;
      expect(report.status).toBe('Unavailable');
      expect(report.failures).toEqual({ etcd: 'Timeout during health check' });
    });
  });

  describe('check (GET /healthcheck)', () => {
    let app: INestApplication | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    async function serve(indicators?: HealthIndicator[], path = 'healthcheck'): Promise<string> {
      const moduleRef = await Test.createTestingModule({
        controllers: [HealthController],
        providers: [
          DrainState,
          ...(indicators ? [{ provide: HEALTH_INDICATORS, useValue: indicators }] : []),
        ],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.listen(0, '127.0.0.1');
      return `${await app.getUrl()}/${path}`;
    }

    it('should answer 200 when no indicator is bound', async () => {
      const res = await fetch(await serve());
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'OK' });
    });

    it('should answer 200 with the failure when only a non-critical indicator fails', async () => {
      const res = await fetch(await serve([failing('pulumi', 'lost: urn:x', false)]));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'Partially Available',
        failures: { pulumi: 'lost: urn:x' },
      });
    });

    it('should answer 503 with the failures when an indicator fails', async () => {
      const res = await fetch(await serve([failing('etcd', 'no quorum')]));
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        status: 'Unavailable',
        failures: { etcd: 'no quorum' },
      });
    });

    it('should keep /healthcheck answering 200 while the replica drains', async () => {
      const url = await serve([ok('etcd')]);
      app!.get(DrainState).begin();
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'OK' });
    });
  });

  describe('probes (GET /livez, GET /readyz)', () => {
    let app: INestApplication | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    async function serve(indicators: HealthIndicator[]): Promise<string> {
      const moduleRef = await Test.createTestingModule({
        controllers: [HealthController],
        providers: [DrainState, { provide: HEALTH_INDICATORS, useValue: indicators }],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.listen(0, '127.0.0.1');
      return await app.getUrl();
    }

    it('should answer liveness 200 without running any indicator, even when etcd fails', async () => {
      const etcd = failing('etcd', 'no quorum');
      const base = await serve([etcd]);
      const res = await fetch(`${base}/livez`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'OK',
        component: { name: 'chall-manager' },
      });
      expect(etcd.calls).toBe(0);
    });

    it('should answer readiness 200 when the indicators pass and 503 when etcd fails', async () => {
      const base = await serve([ok('etcd')]);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      await app!.close();
      const down = await serve([failing('etcd', 'no quorum')]);
      const res = await fetch(`${down}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        status: 'Unavailable',
        failures: { etcd: 'no quorum' },
      });
    });

    it('should answer readiness 503 at once when the replica drains, liveness still 200', async () => {
      const etcd = ok('etcd');
      const base = await serve([etcd]);
      app!.get(DrainState).begin();
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: 'Unavailable',
        failures: { shutdown: 'shutting down' },
      });
      expect(etcd.calls).toBe(0);
      expect((await fetch(`${base}/livez`)).status).toBe(200);
    });
  });
});

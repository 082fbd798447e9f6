import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { MetricService } from 'nestjs-otel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ServiceMetrics } from '../telemetry';
import { DomainErrorFilter } from './domain-error.filter';
import { FailureReporter } from './failure-reporter';
import { DrainInterceptor, DrainState, ServedWhileDraining } from './drain';

/** A call that runs until the test releases it. */
let release: () => void = () => undefined;

@Controller('api/v1/slow')
class SlowController {
  @Get()
  async slow(): Promise<{ done: boolean }> {
    await new Promise<void>((resolve) => (release = resolve));
    return { done: true };
  }
}

@Controller('probe')
@ServedWhileDraining()
class ProbeController {
  @Get()
  probe(): { ok: boolean } {
    return { ok: true };
  }
}

describe('DrainState', () => {
  it('should be idle at once when nothing is in flight', async () => {
    expect(await new DrainState().idle(10_000)).toBe(true);
  });

  it('should resolve idle when the last call in flight leaves', async () => {
    const drain = new DrainState();
    drain.enter();
    drain.enter();
    const idle = drain.idle(10_000);
    drain.leave();
    expect(drain.active).toBe(1);
    drain.leave();
    expect(await idle).toBe(true);
  });

  it('should resolve not idle when the grace runs out first', async () => {
    const drain = new DrainState();
    drain.enter();
    expect(await drain.idle(20)).toBe(false);
    expect(drain.active).toBe(1);
  });

  it('should abort the in-flight signal with an UNAVAILABLE error on cancelInFlight', () => {
    const drain = new DrainState();
    expect(drain.signal.aborted).toBe(false);
    drain.cancelInFlight();
    expect(drain.signal.aborted).toBe(true);
    expect(drain.signal.reason).toMatchObject({ reason: 'SERVICE_UNAVAILABLE' });
  });
});

describe('DrainInterceptor', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    release();
    await app?.close();
    app = undefined;
  });

  async function serve(): Promise<{ base: string; drain: DrainState }> {
    const moduleRef = await Test.createTestingModule({
      controllers: [SlowController, ProbeController],
      providers: [
        DrainState,
        { provide: APP_INTERCEPTOR, useClass: DrainInterceptor },
        { provide: APP_FILTER, useClass: DomainErrorFilter },
        FailureReporter,
        MetricService,
        ServiceMetrics,
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    return { base: await app.getUrl(), drain: app.get(DrainState) };
  }

  it('should count a call in flight, let it finish while draining, and refuse new ones with UNAVAILABLE', async () => {
    const { base, drain } = await serve();
    const inFlight = fetch(`${base}/api/v1/slow`);
    await vi.waitFor(() => expect(drain.active).toBeGreaterThan(0), { timeout: 5_000 });

    drain.begin();
    const refused = await fetch(`${base}/api/v1/slow`);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({
      code: 14,
      message: 'Service shutting down. Try again later.',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'SERVICE_UNAVAILABLE',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { state: 'shutting_down' },
        },
      ],
    });
    expect(drain.active).toBe(1);

    release();
    const done = await inFlight;
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual({ done: true });
    expect(await drain.idle(1_000)).toBe(true);
  });

  it('should keep serving the handlers marked ServedWhileDraining', async () => {
    const { base, drain } = await serve();
    drain.begin();
    const res = await fetch(`${base}/probe`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(drain.active).toBe(0);
  });
});

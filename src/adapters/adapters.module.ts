import { Module } from '@nestjs/common';
import { TraceService } from 'nestjs-otel/lib/tracing/trace.service';
import { dirname, join } from 'node:path';
import { AppConfig } from '../config';
import { AdoptionIndicator, AdoptionReport } from '../shared/adoption-report';
import { BackgroundTasks } from '../shared/background-tasks';
import { ConcurrencyGate } from '../shared/concurrency-gate';
import {
  Clock,
  DistributedLock,
  FlagRecords,
  EventJournal,
  EventPublisher,
  HEALTH_INDICATORS,
  IacEngine,
  OciRegistry,
  ReadinessProbe,
  StateStore,
} from '../shared/ports';
import { ServiceMetrics } from '../shared/telemetry';
import type { EtcdDistributedLock } from './lock/etcd-distributed-lock.adapter';
import { SystemClock } from './clock/system-clock.adapter';
import { FsEventJournal } from './events/fs-event-journal.adapter';
import { GatedIacEngine } from './iac/gated-iac-engine';
import { PendingCreatesIndicator } from './iac/pending-creates.indicator';
import { PulumiIacEngine } from './iac/pulumi-iac-engine.adapter';
import { InMemoryDistributedLock } from './lock/in-memory-distributed-lock.adapter';
import { HttpOciRegistry } from './oci/http-oci-registry.adapter';
import { FsFlagRecords } from './state/fs-flag-records.adapter';
import { NodeReadinessProbe } from './readiness/node-readiness-probe.adapter';
import { FsStateStore } from './state/fs-state-store.adapter';
import { FlagRecordingStateStore } from './state/flag-recording-state-store';
import { PendingCreatesGauge } from './telemetry/pending-creates-gauge';
import { StateGauges } from './telemetry/state-gauges';
import { TelemetryFlush } from './telemetry/telemetry-flush';
import { TracedDistributedLock } from './telemetry/traced-distributed-lock';
import { TracedIacEngine } from './telemetry/traced-iac-engine';
import { TracedOciRegistry } from './telemetry/traced-oci-registry';

/**
 * The real adapters; the ports are bound to their traced decorators (src/adapters/telemetry),
 * and the IaC engine also to the gate bounding how many operations run at once.
 */
const RAW_LOCK = Symbol('raw DistributedLock');
const RAW_OCI = Symbol('raw OciRegistry');
const RAW_IAC = Symbol('raw IacEngine');

/** How long a claim waits for a pooled instance to answer before it takes another one. */
const CLAIM_READINESS_MS = 2_000;

/** node_modules holding what the service provides to nodejs scenarios: @pulumi/pulumi and
 * @chall-manager/sdk. */
const sdkNodeModules = (): string =>
  dirname(dirname(dirname(require.resolve('@pulumi/pulumi/package.json'))));

/** Binds every port to its adapter. Imported explicitly by the contexts that need ports. */
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    BackgroundTasks,
    { provide: AdoptionReport, useValue: new AdoptionReport() },
    {
      provide: FlagRecords,
      inject: [AppConfig],
      useFactory: (c: AppConfig) =>
        new FsFlagRecords({
          dir: c.dir,
          hashKey: c.flags.hashKey,
          retentionMs: c.flags.retentionMs,
        }),
    },
    // Every instance write goes through the flag records (see FlagRecordingStateStore).
    {
      provide: StateStore,
      inject: [AppConfig, AdoptionReport, FlagRecords, Clock],
      useFactory: (c: AppConfig, report: AdoptionReport, flags: FlagRecords, clock: Clock) =>
        new FlagRecordingStateStore(
          new FsStateStore({ dir: c.dir, unreadable: report }),
          flags,
          clock,
        ),
    },
    // etcd when configured (several replicas); else an in-process lock (upstream's local lock).
    // The etcd client (etcd3, its gRPC stack) is loaded only when configured: a single replica
    // would carry it unused.
    {
      provide: RAW_LOCK,
      inject: [AppConfig],
      useFactory: async (c: AppConfig) =>
        c.etcd.endpoints.length > 0
          ? new (await import('./lock/etcd-distributed-lock.adapter')).EtcdDistributedLock({
              endpoints: [...c.etcd.endpoints],
              username: c.etcd.username || undefined,
              password: c.etcd.password || undefined,
              ttlSeconds: c.etcd.leaseTtlSeconds,
            })
          : new InMemoryDistributedLock(),
    },
    {
      provide: DistributedLock,
      inject: [RAW_LOCK, TraceService, ServiceMetrics],
      useFactory: (lock: DistributedLock, traces: TraceService, metrics: ServiceMetrics) =>
        new TracedDistributedLock(lock, traces, metrics),
    },
    // upstream registers an `etcd` check when an endpoint is configured; `pulumi` (not critical)
    // lists resources Pulumi lost track of.
    {
      provide: HEALTH_INDICATORS,
      inject: [RAW_LOCK, AppConfig, IacEngine, AdoptionReport],
      useFactory: (lock: DistributedLock, c: AppConfig, iac: IacEngine, report: AdoptionReport) => [
        ...(c.etcd.endpoints.length > 0 ? [lock as EtcdDistributedLock] : []),
        new PendingCreatesIndicator(iac),
        new AdoptionIndicator(report),
      ],
    },
    {
      provide: RAW_OCI,
      inject: [AppConfig],
      useFactory: (c: AppConfig) =>
        new HttpOciRegistry({
          cacheDir: c.cache,
          insecure: c.oci.insecure,
          username: c.oci.username,
          password: c.oci.password,
          limits: {
            maxLayerBytes: c.oci.maxLayerBytes,
            maxLayers: c.oci.maxLayers,
            maxTotalBytes: c.oci.maxTotalBytes,
          },
          requestTimeoutMs: c.oci.requestTimeoutMs,
          transferTimeoutMs: c.oci.transferTimeoutMs,
        }),
    },
    {
      provide: OciRegistry,
      inject: [RAW_OCI],
      useFactory: (oci: OciRegistry) => new TracedOciRegistry(oci),
    },
    {
      provide: RAW_IAC,
      inject: [AppConfig],
      useFactory: (c: AppConfig) =>
        new PulumiIacEngine({
          dataDir: c.dir,
          cacheDir: c.cache,
          passphrase: c.iac.passphrase,
          operationTimeoutMs: c.iac.operationTimeoutMs,
          cancelGraceMs: c.iac.cancelGraceMs,
          compileTimeoutMs: c.iac.compileTimeoutMs,
          programEnv: { ...c.iac.programEnv },
          nodeModulesDir: sdkNodeModules(),
        }),
    },
    // Spans and durations measure the operation itself; waiting for a slot comes before.
    {
      provide: IacEngine,
      inject: [RAW_IAC, AppConfig, ServiceMetrics],
      useFactory: (iac: IacEngine, c: AppConfig, metrics: ServiceMetrics) =>
        new GatedIacEngine(
          new TracedIacEngine(iac, metrics),
          new ConcurrencyGate(c.iac.concurrency),
        ),
    },
    // Lifecycle events: a journal under DIR beside the records, appended under the shared lock.
    {
      provide: FsEventJournal,
      inject: [AppConfig, DistributedLock, Clock],
      useFactory: (c: AppConfig, lock: DistributedLock, clock: Clock) =>
        new FsEventJournal({ dir: join(c.dir, 'events'), size: c.events.journalSize }, lock, clock),
    },
    { provide: EventPublisher, useExisting: FsEventJournal },
    { provide: EventJournal, useExisting: FsEventJournal },
    // A claim only checks that a pooled instance still answers: a couple of seconds at most.
    {
      provide: ReadinessProbe,
      inject: [AppConfig],
      useFactory: (c: AppConfig) =>
        new NodeReadinessProbe({
          bounds: {
            readyTimeoutMs: c.readiness.timeoutMs,
            claimTimeoutMs: Math.min(CLAIM_READINESS_MS, c.readiness.timeoutMs),
          },
        }),
    },
    // The `challenges` and `instances` gauges, read from the state; the last export on shutdown.
    StateGauges,
    PendingCreatesGauge,
    TelemetryFlush,
  ],
  exports: [
    Clock,
    BackgroundTasks,
    AdoptionReport,
    StateStore,
    FlagRecords,
    DistributedLock,
    OciRegistry,
    IacEngine,
    EventPublisher,
    EventJournal,
    ReadinessProbe,
    HEALTH_INDICATORS,
  ],
})
export class AdaptersModule {}

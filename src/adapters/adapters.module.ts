import { Module } from '@nestjs/common';
import { dirname } from 'node:path';
import { AppConfig } from '../config';
import { BackgroundTasks } from '../shared/background-tasks';
import { Clock, DistributedLock, IacEngine, OciRegistry, StateStore } from '../shared/ports';
import { SystemClock } from './clock/system-clock.adapter';
import { PulumiIacEngine } from './iac/pulumi-iac-engine.adapter';
import { InMemoryDistributedLock } from './lock/in-memory-distributed-lock.adapter';
import { HttpOciRegistry } from './oci/http-oci-registry.adapter';
import { FsStateStore } from './state/fs-state-store.adapter';

/** node_modules holding the Pulumi SDK the service provides to nodejs scenarios. */
const sdkNodeModules = (): string =>
  dirname(dirname(dirname(require.resolve('@pulumi/pulumi/package.json'))));

/** Binds every port to its adapter. Imported explicitly by the contexts that need ports. */
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    BackgroundTasks,
    {
      provide: StateStore,
      inject: [AppConfig],
      useFactory: (c: AppConfig) => new FsStateStore({ dir: c.dir }),
    },
    // Single replica: an in-process readers-writer lock (upstream's local lock).
    { provide: DistributedLock, useClass: InMemoryDistributedLock },
    {
      provide: OciRegistry,
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
        }),
    },
    {
      provide: IacEngine,
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
  ],
  exports: [Clock, BackgroundTasks, StateStore, DistributedLock, OciRegistry, IacEngine],
})
export class AdaptersModule {}

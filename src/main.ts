// First: the thread pool is sized at its first use.
import './config/threadpool';
// Then the OpenTelemetry SDK must patch http, express and grpc-js before they are loaded.
import './telemetry/preload';
// Then @nestjs/common, with the date formatters of its console logger built at their first use.
import './shared/nest-preload';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
// The adapter from its own file: the package's index (what Nest loads by default) also brings
// multer, its file-upload interceptors and a second copy of mime-db, which no route here uses.
import { ExpressAdapter } from '@nestjs/platform-express/adapters/express-adapter.js';
import { makeOwnerOnly } from './adapters/state/owner-only';
import { AppModule } from './app.module';
import { ConfigError, loadConfigFromProcessEnv, type AppConfig } from './config';
import { compactHeapAfterStartUp } from './shared/compact-heap';
import { createLogger } from './shared/logging';
import { API_APP_OPTIONS, gracefulShutdown, startApiServer } from './shared/transport';

async function bootstrap(config: AppConfig): Promise<void> {
  const logger = createLogger(config.logLevel);
  // DIR and CACHE hold flags (records, Pulumi checkpoints) and scenarios: owner-only, including
  // what older versions or other tools left there.
  for (const root of [config.dir, config.cache]) {
    const changed = await makeOwnerOnly(root);
    if (changed > 0) logger.warn(`${changed} entries under ${root} made owner-only`, 'Bootstrap');
  }
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config),
    new ExpressAdapter(),
    { ...API_APP_OPTIONS, logger },
  );
  // gRPC and REST on one port (single-port.ts), gRPC sharing the app's filter.
  await startApiServer(app, config.port);
  // Start-up's garbage (module loading, protos, the application's graph) freed once, not kept.
  compactHeapAfterStartUp();
  logger.log(`chall-manager listening on port ${config.port} (gRPC and REST)`, 'Bootstrap');
  // SIGTERM/SIGINT drain the replica, then close it and exit 0 (graceful-shutdown.ts). Not
  // Nest's enableShutdownHooks: it closes the app at once, cutting the calls in flight, and
  // exits by re-raising the signal.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return; // a second signal changes nothing: the drain is bounded
    stopping = true;
    logger.log(`${signal} received`, 'Shutdown');
    gracefulShutdown(app, {
      graceMs: config.shutdownGraceMs,
      cancelGraceMs: config.iac.cancelGraceMs,
      logger,
    }).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`chall-manager: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function main(): void {
  // Files and directories this process and its children (the Pulumi CLI, its plugins, scenario
  // programs) create are owner-only: 0600 files, 0700 directories.
  process.umask(0o077);
  let config: AppConfig;
  try {
    config = loadConfigFromProcessEnv();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chall-manager: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  bootstrap(config).catch((err: unknown) => {
    process.stderr.write(`chall-manager: failed to start: ${String(err)}\n`);
    process.exit(1);
  });
}

main();

import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { ConfigError, loadConfigFromProcessEnv, type AppConfig } from './config';
import { createLogger } from './shared/logging';

async function bootstrap(config: AppConfig): Promise<void> {
  const logger = createLogger(config.logLevel);
  const app = await NestFactory.create(AppModule.forRoot(config), { logger });
  app.enableShutdownHooks();
  await app.init();
  await app.listen(config.port);
  logger.log(`chall-manager listening on port ${config.port}`, 'Bootstrap');
}

function main(): void {
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

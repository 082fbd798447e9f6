import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { HealthController } from './health.controller';

/**
 * `GET /healthcheck`. The checks come from `HEALTH_INDICATORS` when AdaptersModule binds and
 * exports it (the etcd lock when an endpoint is configured); none otherwise.
 */
@Module({ imports: [AdaptersModule], controllers: [HealthController] })
export class HealthModule {}

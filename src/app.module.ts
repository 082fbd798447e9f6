import { DynamicModule, Module } from '@nestjs/common';
import { AdoptionModule } from './adoption';
import { ChallengeStoreModule } from './challenge-store';
import { AppConfig, ConfigModule } from './config';
import { FlagCheckerModule } from './flag-checker';
import { EventsModule } from './events';
import { HealthModule } from './health';
import { InstanceManagerModule } from './instance-manager';
import { JanitorModule } from './janitor';
import { PoolerModule } from './pooler';
import { TelemetryModule } from './shared/telemetry';
import { TransportModule } from './shared/transport';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        TelemetryModule,
        TransportModule,
        HealthModule,
        ChallengeStoreModule,
        InstanceManagerModule,
        PoolerModule,
        JanitorModule,
        AdoptionModule,
        FlagCheckerModule,
        EventsModule,
      ],
    };
  }
}

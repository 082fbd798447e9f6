import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { AppConfig } from '../config';
import { EventsOptions } from './events.options';
import { EventsService } from './events.service';
import { ExpiringScheduler } from './expiring.scheduler';
import { EventStreamGrpcController } from './transport/event-stream.grpc.controller';
import { EventsHttpController } from './transport/events.http.controller';
import { WebhookDeliverer } from './webhook.deliverer';

/**
 * Lifecycle events out of the journal the services publish to: watches over gRPC and
 * Server-Sent Events, `instance.expiring` announcements, webhook deliveries.
 */
@Module({
  imports: [AdaptersModule],
  controllers: [EventStreamGrpcController, EventsHttpController],
  providers: [
    EventsService,
    ExpiringScheduler,
    WebhookDeliverer,
    {
      provide: EventsOptions,
      inject: [AppConfig],
      useFactory: (c: AppConfig) =>
        new EventsOptions(c.events.keepAliveMs, c.events.expiringLeadMs, c.events.webhook),
    },
  ],
})
export class EventsModule {}

import {
  All,
  Controller,
  Get,
  Headers,
  MethodNotAllowedException,
  Query,
  Res,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { DrainState } from '../../shared/transport/drain';
import { FailureReporter } from '../../shared/transport/failure-reporter';
import { EventsOptions } from '../events.options';
import { EventsService } from '../events.service';
import { watchFromQuery } from './event.wire';
import { writeEventStream } from './event-stream';

/** api.v1.event.EventStream over REST: Watch as Server-Sent Events. */
@Controller('api/v1/events')
export class EventsHttpController {
  constructor(
    private readonly events: EventsService,
    private readonly options: EventsOptions,
    private readonly drain: DrainState,
    private readonly failures: FailureReporter,
  ) {}

  /** `?challengeId=&sourceId=&after=`; an EventSource resumes with its `Last-Event-ID`. */
  @Get()
  async watch(
    @Query() query: Record<string, unknown>,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() res: ServerResponse,
  ): Promise<void> {
    const input = watchFromQuery(query, lastEventId);
    const from = await this.events.startOf(input);
    await writeEventStream(res, (signal) => this.events.watch(input.filter, from, signal), {
      keepAliveMs: this.options.keepAliveMs,
      stop: this.drain.drainingSignal,
      failures: this.failures,
    });
  }

  /** Another method: the gateway's 501 "Method Not Allowed". Keep last. */
  @All()
  methodNotAllowed(): never {
    throw new MethodNotAllowedException();
  }
}

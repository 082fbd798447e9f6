import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Observable } from 'rxjs';
import { ShuttingDownError } from '../../shared/errors';
import type {
  EventGrpc,
  EventStreamGrpcHandlers,
  WatchRequestGrpc,
} from '../../shared/transport/api-messages.generated';
import { DrainState } from '../../shared/transport/drain';
import { EventsService } from '../events.service';
import { eventToGrpc, watchFromGrpc } from './event.wire';

/**
 * api.v1.event.EventStream over gRPC. A watch ends when the client cancels it, and with
 * UNAVAILABLE when the replica drains, so the client resumes (with `after`) on another one.
 */
@Controller()
export class EventStreamGrpcController implements EventStreamGrpcHandlers {
  constructor(
    private readonly events: EventsService,
    private readonly drain: DrainState,
  ) {}

  /**
   * The response headers are sent once the starting position is read: a client that waits for
   * them sees whatever happens afterwards.
   */
  @GrpcMethod('EventStream', 'Watch')
  watch(
    req: WatchRequestGrpc,
    _metadata?: Metadata,
    call?: ServerWritableStream<WatchRequestGrpc, EventGrpc>,
  ): Observable<EventGrpc> {
    const input = watchFromGrpc(req);
    return new Observable<EventGrpc>((subscriber) => {
      const cancelled = new AbortController();
      const draining = this.drain.drainingSignal;
      const signal = AbortSignal.any([cancelled.signal, draining]);
      void (async () => {
        try {
          const from = await this.events.startOf(input);
          call?.sendMetadata(new Metadata());
          for await (const event of this.events.watch(input.filter, from, signal)) {
            subscriber.next(eventToGrpc(event));
          }
          if (draining.aborted) subscriber.error(new ShuttingDownError());
          else subscriber.complete();
        } catch (err) {
          subscriber.error(err);
        }
      })();
      return () => cancelled.abort();
    });
  }
}

import {
  Injectable,
  SetMetadata,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { finalize, throwError, type Observable } from 'rxjs';
import { ShuttingDownError } from '../errors';

const SERVED_WHILE_DRAINING = 'chall-manager:served-while-draining';

/** Marks a controller or handler (the probes) that keeps answering while the replica drains. */
export const ServedWhileDraining = (): ClassDecorator & MethodDecorator =>
  SetMetadata(SERVED_WHILE_DRAINING, true);

/**
 * Whether the replica is draining (SIGTERM received) and how many API calls are in flight, on
 * both transports. Requests in flight get `signal`, aborted when the shutdown grace runs out, so
 * their IaC work is cancelled and cleaned up rather than cut by the process exit.
 */
@Injectable()
export class DrainState {
  private draining = false;
  private inFlight = 0;
  private readonly cancel = new AbortController();
  private readonly begun = new AbortController();
  private readonly idleWaiters = new Set<() => void>();

  get isDraining(): boolean {
    return this.draining;
  }

  /** API calls started and not finished. */
  get active(): number {
    return this.inFlight;
  }

  /** Aborted by {@link cancelInFlight}: what requests in flight pass to their work. */
  get signal(): AbortSignal {
    return this.cancel.signal;
  }

  /**
   * Aborted by {@link begin}: what streams that never end by themselves (event watches) listen
   * to, so they close at once instead of holding the drain for the whole grace.
   */
  get drainingSignal(): AbortSignal {
    return this.begun.signal;
  }

  /** From now on the readiness probe fails and new calls are refused. */
  begin(): void {
    this.draining = true;
    this.begun.abort(new ShuttingDownError());
  }

  /** The grace ran out: requests still in flight are asked to stop. */
  cancelInFlight(): void {
    this.cancel.abort(new ShuttingDownError());
  }

  enter(): void {
    this.inFlight += 1;
  }

  leave(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) for (const wake of this.idleWaiters) wake();
  }

  /** Resolves true once no call is in flight, or false when `withinMs` ran out first. */
  idle(withinMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(idle);
      };
      const wake = (): void => done(true);
      const timer = setTimeout(() => done(false), withinMs);
      this.idleWaiters.add(wake);
    });
  }
}

/**
 * Counts API calls in flight (REST and gRPC: the interceptor runs on both) and, once the replica
 * drains, refuses new ones with UNAVAILABLE (HTTP 503) in the error table's shape, before any
 * work. The probes are exempt ({@link ServedWhileDraining}).
 */
@Injectable()
export class DrainInterceptor implements NestInterceptor {
  constructor(
    private readonly drain: DrainState,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const exempt = this.reflector.getAllAndOverride<boolean | undefined>(SERVED_WHILE_DRAINING, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (exempt === true) return next.handle();
    if (this.drain.isDraining) return throwError(() => new ShuttingDownError());
    this.drain.enter();
    return next.handle().pipe(finalize(() => this.drain.leave()));
  }
}

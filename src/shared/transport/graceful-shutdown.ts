import type { INestApplication, LoggerService } from '@nestjs/common';
import { BackgroundTasks } from '../background-tasks';
import { DrainState } from './drain';

/**
 * After requests in flight were cancelled: what their clean-up (Pulumi's cancel, then the
 * destroy of what a cancelled create made) may take beyond IAC_CANCEL_GRACE before the process
 * closes anyway. What is still running then is reconciled by the janitor's sweep at the next
 * start (stacks without a record are destroyed).
 */
export const CLEANUP_BUDGET_MS = 30_000;

export interface ShutdownOptions {
  /** SHUTDOWN_GRACE: how long requests in flight may still run. */
  graceMs: number;
  /** IAC_CANCEL_GRACE: how long a cancelled Pulumi operation gets to stop. */
  cancelGraceMs: number;
  logger: LoggerService;
}

/**
 * What SIGTERM does, in order:
 * 1. the replica drains: `/readyz` answers 503 and new API calls UNAVAILABLE, on both transports
 *    (the port stays open so that callers get that answer rather than a refused connection
 *    while the load balancer takes the replica out);
 * 2. background work (pool spin-ups) is cancelled at once: nobody waits for it, and a cancelled
 *    spin-up destroys what it created (awaited, within `cancelGraceMs` plus
 *    {@link CLEANUP_BUDGET_MS});
 * 3. calls in flight finish within `graceMs`; past it they are cancelled (their IaC work stops
 *    and is cleaned up, within `cancelGraceMs` plus {@link CLEANUP_BUDGET_MS});
 * 4. the app closes: the port (gRPC clients get GOAWAY), the janitor, the background tasks
 *    (awaited), the etcd lease, the telemetry flush.
 */
export async function gracefulShutdown(
  app: INestApplication,
  opts: ShutdownOptions,
): Promise<void> {
  const drain = app.get(DrainState);
  const tasks = app.get(BackgroundTasks, { strict: false });
  drain.begin();
  tasks.cancel();
  // Cancelled spin-ups clean up under their locks: they must be done before the app closes the
  // lock service, so they are awaited here, alongside the calls in flight.
  const cleanupMs = opts.cancelGraceMs + CLEANUP_BUDGET_MS;
  const background = within(tasks.drain(), cleanupMs);
  opts.logger.log(
    `draining: ${drain.active} call(s) in flight, ${tasks.size} background task(s) cancelled`,
    'Shutdown',
  );
  if (!(await drain.idle(opts.graceMs))) {
    opts.logger.warn(
      `${drain.active} call(s) still in flight after SHUTDOWN_GRACE: cancelling them`,
      'Shutdown',
    );
    drain.cancelInFlight();
    if (!(await drain.idle(cleanupMs))) {
      opts.logger.warn(
        `${drain.active} cancelled call(s) did not finish; the next sweep reconciles their stacks`,
        'Shutdown',
      );
    }
  }
  if (!(await background)) {
    opts.logger.warn(
      `${tasks.size} background task(s) did not finish; the next sweep reconciles their stacks`,
      'Shutdown',
    );
  }
  await app.close();
  opts.logger.log('stopped', 'Shutdown');
}

/** Whether `work` settled within `ms`. */
async function within(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

import type { LockKey } from '../../shared/domain/lock-keys';
import { DistributedLock } from '../../shared/ports';
import { trace } from '@opentelemetry/api';
import type { TraceService } from 'nestjs-otel/lib/tracing/trace.service';
import type { ServiceMetrics } from '../../shared/telemetry';

/** challenge | source | instance | janitor: which kind of record a key guards. */
function kindOf(key: LockKey): string {
  if (key.includes('/src/')) return 'source';
  if (key.includes('/inst/')) return 'instance';
  if (key.startsWith('chall/')) return 'challenge';
  return key;
}

/**
 * DistributedLock decorator: a `lock.wait` child span from the call until the lock is held
 * (attributes `lock.key`, `lock.kind`, `lock.mode`), the `lock.wait.duration` histogram, and
 * upstream's span events on the caller's span (`lock <kind>`, `locked <kind>`, `unlocked <kind>`).
 *
 * Hand-written, not nestjs-otel's `@Span`: that span would cover the whole call, work included,
 * and make itself the parent of the work, while `lock.wait` ends when the lock is held and the
 * work runs in the caller's span.
 */
export class TracedDistributedLock extends DistributedLock {
  constructor(
    private readonly inner: DistributedLock,
    private readonly traces: TraceService,
    private readonly metrics: ServiceMetrics,
  ) {
    super();
  }

  withReadLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.traced('read', key, work, (w) => this.inner.withReadLock(key, w, signal));
  }

  withWriteLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.traced('write', key, work, (w) => this.inner.withWriteLock(key, w, signal));
  }

  private async traced<T>(
    mode: 'read' | 'write',
    key: LockKey,
    work: () => Promise<T>,
    take: (work: () => Promise<T>) => Promise<T>,
  ): Promise<T> {
    const kind = kindOf(key);
    const attributes = { 'lock.key': key, 'lock.kind': kind, 'lock.mode': mode };
    const started = performance.now();
    const wait = this.traces.getTracer().startSpan('lock.wait', { attributes });
    const caller = trace.getActiveSpan();
    caller?.addEvent(`lock ${kind}`);
    let held = false;
    const onHeld = (): void => {
      held = true;
      wait.end();
      caller?.addEvent(`locked ${kind}`);
      this.metrics.recordDuration('lock.wait.duration', started, { kind, mode, outcome: 'ok' });
    };
    try {
      return await take(async () => {
        onHeld();
        try {
          return await work();
        } finally {
          caller?.addEvent(`unlocked ${kind}`);
        }
      });
    } finally {
      if (!held) {
        // Never got the lock (aborted, lock service down).
        wait.setAttribute('lock.acquired', false);
        wait.end();
        this.metrics.recordDuration('lock.wait.duration', started, {
          kind,
          mode,
          outcome: 'error',
        });
      }
    }
  }
}

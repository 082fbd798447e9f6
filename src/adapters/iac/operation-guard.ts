import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';

/** Environment variable marking every process of one IaC operation (CLI, host, program, plugins). */
export const OPERATION_MARKER = 'CM_IAC_OPERATION';

/**
 * Bounds one Pulumi operation in time. On timeout (or when the caller aborts) the CLI first gets
 * SIGINT, Pulumi's graceful cancel; a program or provider stuck in a call ignores that, so after
 * `graceMs` every process carrying this operation's marker in its environment is killed. Linux
 * only (it reads /proc), like the service's deployment targets.
 */
export class OperationGuard {
  readonly id = randomBytes(8).toString('hex');
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly onParentAbort = (): void => this.abort();
  private expired = false;

  constructor(
    timeoutMs: number,
    private readonly graceMs: number,
    private readonly parent?: AbortSignal,
  ) {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.abort();
    }, timeoutMs);
    parent?.addEventListener('abort', this.onParentAbort, { once: true });
    if (parent?.aborted) this.abort();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether the operation was cancelled (its stack may hold a stale lock and pending work). */
  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  /** Whether it was cancelled because it outlived its timeout (not by the caller). */
  get timedOut(): boolean {
    return this.expired;
  }

  get env(): Record<string, string> {
    return { [OPERATION_MARKER]: this.id };
  }

  dispose(): void {
    clearTimeout(this.timer);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }

  private abort(): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort(new Error('IaC operation cancelled (timeout or caller gone)'));
    this.killTimer = setTimeout(() => {
      killMarked(this.id).catch((err: unknown) =>
        new Logger(OperationGuard.name).error(`killing operation ${this.id}: ${String(err)}`),
      );
    }, this.graceMs);
  }
}

/** SIGKILLs every process whose environment carries the marker of operation `id`. */
export async function killMarked(id: string): Promise<number> {
  const needle = `${OPERATION_MARKER}=${id}`;
  let killed = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    if (!environ.split('\0').includes(needle)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DeployerService } from '../deployer';
import { AdoptionReport } from '../shared/adoption-report';
import { inBackground } from '../shared/concurrency-gate';
import { instanceRecordName, lockKeys } from '../shared/domain';
import { DistributedLock, StateStore } from '../shared/ports';

/** What one adoption pass did. */
export interface AdoptionSummary {
  adopted: number;
  failed: number;
}

/**
 * Takes over, at start, the instances an upstream chall-manager (Go) left in DIR: their Pulumi
 * state is imported into our backend and their records rewritten in our format (see
 * `DeployerService.adoptIfUpstream`, which every update and destroy also calls, so an instance
 * touched before this pass reaches it is adopted then). The pass runs in the background (the
 * API serves meanwhile), one instance at a time under the instance's lock, so replicas starting
 * together adopt each instance once. Upstream's challenge records, claim files and pooled
 * instances (no claim file) are already in our format and are used as they are.
 */
@Injectable()
export class AdoptionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AdoptionService.name);
  private readonly controller = new AbortController();
  private pass: Promise<AdoptionSummary> | undefined;

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly deployer: DeployerService,
    private readonly report: AdoptionReport,
  ) {}

  onApplicationBootstrap(): void {
    this.pass = this.adoptAll(this.controller.signal);
  }

  async onApplicationShutdown(): Promise<void> {
    this.controller.abort(new DOMException('application shutdown', 'AbortError'));
    await this.pass;
  }

  /** The pass started at boot (a pass now when none was started). */
  whenDone(): Promise<AdoptionSummary> {
    this.pass ??= this.adoptAll(this.controller.signal);
    return this.pass;
  }

  /** Adopts every upstream instance record; failures are reported, never thrown. */
  adoptAll(signal?: AbortSignal): Promise<AdoptionSummary> {
    // Background priority: player requests waiting for an IaC slot go first.
    return inBackground(async () => {
      const summary: AdoptionSummary = { adopted: 0, failed: 0 };
      try {
        for (const challenge of await this.state.listChallenges()) {
          for (const listed of await this.state.listInstances(challenge.id)) {
            if (signal?.aborted) return summary;
            await this.adoptOne(challenge.id, listed.identity, summary, signal);
          }
        }
      } catch (err) {
        summary.failed++;
        this.logger.error(`adoption of upstream records stopped: ${messageOf(err)}`);
      }
      if (summary.adopted + summary.failed > 0) {
        this.logger.log(
          `adoption of upstream records: ${summary.adopted} instance(s) adopted, ${summary.failed} failed (listed in /healthcheck)`,
        );
      }
      return summary;
    });
  }

  private async adoptOne(
    challengeId: string,
    identity: string,
    summary: AdoptionSummary,
    signal?: AbortSignal,
  ): Promise<void> {
    const record = instanceRecordName(challengeId, identity);
    try {
      // Cheap check without the lock: most records are ours.
      if ((await this.state.upstreamState(challengeId, identity)) === undefined) return;
      const adopted = await this.lock.withWriteLock(
        lockKeys.instance(challengeId, identity),
        // Checked again under the lock: another replica (or a touch) may have adopted it.
        () => this.deployer.adoptIfUpstream({ challengeId, identity }, signal),
        signal,
      );
      this.report.resolve(record);
      if (adopted) summary.adopted++;
    } catch (err) {
      if (signal?.aborted) return;
      summary.failed++;
      this.report.fail(record, `not adopted: ${messageOf(err)}`);
      this.logger.error(
        `instance ${identity} of challenge ${challengeId}, written by upstream chall-manager, could not be adopted (its record is kept): ${messageOf(err)}`,
      );
    }
  }
}

function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // IaC errors carry a generic message for clients; the cause says what went wrong.
  return err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message;
}

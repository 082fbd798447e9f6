import { Injectable, Logger, Optional } from '@nestjs/common';
import { InstanceManagerService } from '../instance-manager';
import { DeployerService } from '../deployer';
import { PoolerService } from '../pooler';
import {
  isChallengeExpired,
  isClaimed,
  isInstanceExpired,
  isPooled,
  lockKeys,
} from '../shared/domain';
import { InstanceNotFoundError } from '../shared/errors';
import { Clock, DistributedLock, FlagRecords, IacEngine, StateStore } from '../shared/ports';

/** What one sweep did. `failed` deletes stay recorded and are retried by the next sweep. */
export interface SweepReport {
  deleted: number;
  drained: number;
  /** Stacks found without an instance record (left by a crash) and destroyed. */
  orphans: number;
  /**
   * Orphan stacks destroyed that had creates a dead process left pending: Pulumi lost track of
   * those resources, which may still run (`IacEngine.pendingCreates` lists them). Never clean.
   */
  leaked: number;
  /** Leftovers of failed operations removed (stack state without a project dir, temp files). */
  leftovers: number;
  /** Redeployments a crash interrupted, finished or undone. */
  resumed: number;
  failed: number;
}

/**
 * Reclaims what expired: claimed instances whose `until` has passed (deleted exactly as a
 * DeleteInstance call would, locks included), and the pooled instances of challenges whose
 * `until` has passed (upstream kept those until `min` was set to 0). Pools of live challenges
 * short of their target (spin-ups lost to a crash) are topped up.
 * upstream: ctfer-io/chall-manager cmd/chall-manager-janitor, without its quirk of treating an
 * instance with no `until` as expired.
 */
@Injectable()
export class JanitorService {
  private readonly logger = new Logger(JanitorService.name);

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly clock: Clock,
    private readonly instances: InstanceManagerService,
    private readonly deployer: DeployerService,
    private readonly iac: IacEngine,
    private readonly pooler: PoolerService,
    /** Flag records past FLAG_RETENTION are purged on each sweep (none: nothing to purge). */
    @Optional() private readonly flags?: FlagRecords,
  ) {}

  async sweep(now: Date = this.clock.now(), signal?: AbortSignal): Promise<SweepReport> {
    const report: SweepReport = {
      deleted: 0,
      drained: 0,
      orphans: 0,
      leaked: 0,
      leftovers: 0,
      resumed: 0,
      failed: 0,
    };
    for (const challenge of await this.state.listChallenges()) {
      const all = await this.state.listInstances(challenge.id);
      const expired = all.filter(isClaimed).filter((i) => isInstanceExpired(i, now));
      await Promise.all(
        expired.map(async (instance) => {
          try {
            await this.instances.delete(challenge.id, instance.sourceId, signal);
            report.deleted++;
          } catch (err) {
            // Someone else (a player, another janitor) deleted it first: done all the same.
            if (err instanceof InstanceNotFoundError) return;
            report.failed++;
            this.logger.error(
              `janitor: deleting instance ${instance.identity} of challenge ${challenge.id}: ${String(err)}`,
            );
          }
        }),
      );
      if (!isChallengeExpired(challenge, now)) {
        // Spin-ups lost to a crash (or a failed `up`) are started again.
        const current = await this.state.listInstances(challenge.id);
        const pooledNow = current.filter(isPooled).length;
        this.pooler.replenish(challenge, current.length - pooledNow, pooledNow);
        continue;
      }
      const pooled = all.filter(isPooled);
      await Promise.all(
        pooled.map((instance) =>
          this.lock
            .withWriteLock(lockKeys.instance(challenge.id, instance.identity), async () => {
              // Claimed since it was listed? Then it is a player's now, not the pool's.
              const current = await this.state.loadInstance(challenge.id, instance.identity);
              if (!current || isClaimed(current)) return;
              await this.deployer.destroy(current, signal);
              report.drained++;
            })
            .catch((err: unknown) => {
              report.failed++;
              this.logger.error(
                `janitor: draining pooled ${instance.identity} of challenge ${challenge.id}: ${String(err)}`,
              );
            }),
        ),
      );
    }
    await this.reconcile(report, signal);
    report.leftovers = await this.iac.reclaimLeftovers().catch((err: unknown) => {
      report.failed++;
      this.logger.error(`janitor: reclaiming leftovers of failed operations: ${String(err)}`);
      return 0;
    });
    await this.purgeFlagRecords(now, report);
    const { deleted, drained, orphans, leaked, leftovers, failed } = report;
    if (deleted + drained + orphans + leaked + leftovers + failed > 0) {
      this.logger.log(
        `janitor sweep: ${report.deleted} deleted, ${report.drained} drained, ${report.orphans} orphan stacks destroyed, ${report.leaked} orphan stacks destroyed with resources left behind, ${report.leftovers} leftovers removed, ${report.failed} failed`,
      );
    }
    return report;
  }

  /**
   * Removes flag records past retention, and starts the retention of records whose instance is
   * gone (a crash between the instance's delete and its record's mark). Not counted in the
   * report: the records are bookkeeping, not resources.
   */
  private async purgeFlagRecords(now: Date, report: SweepReport): Promise<void> {
    if (this.flags === undefined) return;
    try {
      const purged = await this.flags.purge(
        now,
        async (challengeId, identity) =>
          (await this.state.loadInstance(challengeId, identity)) !== undefined,
      );
      if (purged > 0) this.logger.log(`janitor: ${purged} flag records past retention removed`);
    } catch (err) {
      report.failed++;
      this.logger.error(`janitor: purging flag records: ${String(err)}`);
    }
  }

  /** Finishes or undoes redeployments (recreate, blue-green) a crash interrupted. */
  private async resumePending(report: SweepReport, signal?: AbortSignal): Promise<void> {
    for (const challenge of await this.state.listChallenges()) {
      for (const listed of await this.state.listInstances(challenge.id)) {
        if (listed.pending === undefined) continue;
        // A recreate deploys again: its scenario is pulled before the instance lock.
        const pull =
          listed.pending.operation === 'recreate'
            ? this.deployer.prefetch(challenge, signal)
            : Promise.resolve(undefined);
        await pull
          .then((scenario) =>
            this.lock.withWriteLock(
              lockKeys.instance(challenge.id, listed.identity),
              async () => {
                // Under the lock: a redeployment still running holds it, and ends without `pending`.
                const current = await this.state.loadInstance(challenge.id, listed.identity);
                if (current?.pending === undefined) return;
                this.logger.warn(
                  `janitor: resuming an interrupted ${current.pending.operation} of ${current.identity}`,
                );
                await this.deployer.resume(challenge, current, signal, scenario);
                report.resumed++;
              },
              signal,
            ),
          )
          .catch((err: unknown) => {
            report.failed++;
            this.logger.error(`janitor: resuming ${listed.identity}: ${String(err)}`);
          });
      }
    }
  }

  /**
   * Destroys stacks that have no instance record: what a process killed during a deployment
   * left behind. A deployment in progress holds its instance's lock until the record is written,
   * so taking that lock and checking again tells an orphan from work in flight.
   */
  private async reconcile(report: SweepReport, signal?: AbortSignal): Promise<void> {
    await this.resumePending(report, signal);
    const stacks = await this.iac.listStacks();
    await Promise.all(
      stacks.map(async (ref) => {
        if (await this.state.loadInstance(ref.challengeId, ref.identity)) return;
        await this.lock
          .withWriteLock(
            lockKeys.instance(ref.challengeId, ref.identity),
            async () => {
              if (await this.state.loadInstance(ref.challengeId, ref.identity)) return;
              this.logger.warn(
                `janitor: stack ${ref.identity} of challenge ${ref.challengeId} has no record; destroying it`,
              );
              await this.iac.destroy(ref, signal);
              // A create the crash left pending is lost to Pulumi: the resource may live on.
              const lost = (await this.iac.pendingCreates()).filter(
                (p) => p.identity === ref.identity,
              );
              if (lost.length === 0) {
                report.orphans++;
                return;
              }
              report.leaked++;
              this.logger.error(
                `janitor: orphan stack ${ref.identity} of challenge ${ref.challengeId} destroyed, but resources whose creation was interrupted may still exist: ${lost.map((p) => p.urn).join(', ')}`,
              );
            },
            signal,
          )
          .catch((err: unknown) => {
            report.failed++;
            this.logger.error(`janitor: destroying orphan stack ${ref.identity}: ${String(err)}`);
          });
      }),
    );
  }
}

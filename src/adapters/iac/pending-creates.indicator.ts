import { HealthIndicator, IacEngine } from '../../shared/ports';

/**
 * `/healthcheck` entry `pulumi`: fails, without making the service unavailable, while resources
 * whose creation a dead Pulumi process left pending are recorded (they may still run, unseen by
 * Pulumi). It names them so an operator can act; it passes again once their records are removed.
 */
export class PendingCreatesIndicator extends HealthIndicator {
  readonly name = 'pulumi';
  override readonly critical = false;

  constructor(private readonly iac: IacEngine) {
    super();
  }

  async check(): Promise<void> {
    const pending = await this.iac.pendingCreates();
    if (pending.length === 0) return;
    const urns = pending.map((p) => p.urn).join(', ');
    throw new Error(
      `${pending.length} resource(s) whose creation was interrupted may still exist (remove them by hand, then their records under DIR/pulumi/pending): ${urns}`,
    );
  }
}

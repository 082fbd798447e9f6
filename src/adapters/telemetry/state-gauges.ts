import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { ObservableCallback, ObservableGauge } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel/lib/metrics/metric.service';
import { isPooled } from '../../shared/domain';
import { StateStore } from '../../shared/ports';

/** A collection reuses a reading of the state this recent (collections stay cheap). */
export const STATE_READING_TTL_MS = 5_000;

interface Reading {
  challenges: number;
  /** challenge id → [claimed, pooled] */
  instances: Map<string, [number, number]>;
}

/**
 * The `challenges` and `instances` gauges (upstream's names), read from the shared state at
 * collection time rather than counted in-process: they are right from the first collection
 * after a restart and agree across replicas. `instances` has attributes
 * `challenge` (id) and `pool` (true: pooled, false: claimed by a source).
 */
@Injectable()
export class StateGauges implements OnModuleInit, OnModuleDestroy {
  private gauges: [ObservableGauge, ObservableGauge] | undefined;
  private reading: { at: number; value: Promise<Reading> } | undefined;

  // One callback per gauge (MetricService gives instruments, not the meter a batch callback
  // needs); both share the reading of a collection, see read().
  private readonly observeChallenges: ObservableCallback = async (result) => {
    const reading = await this.read().catch(() => undefined);
    if (reading) result.observe(reading.challenges);
  };

  private readonly observeInstances: ObservableCallback = async (result) => {
    const reading = await this.read().catch(() => undefined);
    if (!reading) return;
    for (const [challenge, [claimed, pooled]] of reading.instances) {
      result.observe(claimed, { challenge, pool: false });
      result.observe(pooled, { challenge, pool: true });
    }
  };

  constructor(
    private readonly state: StateStore,
    private readonly metrics: MetricService,
  ) {}

  onModuleInit(): void {
    const challenges = this.metrics.getObservableGauge('challenges', {
      description: 'Number of registered challenges',
    });
    const instances = this.metrics.getObservableGauge('instances', {
      description: 'Number of instances, by challenge and pool (pooled or claimed)',
    });
    challenges.addCallback(this.observeChallenges);
    instances.addCallback(this.observeInstances);
    this.gauges = [challenges, instances];
  }

  onModuleDestroy(): void {
    if (!this.gauges) return;
    const [challenges, instances] = this.gauges;
    challenges.removeCallback(this.observeChallenges);
    instances.removeCallback(this.observeInstances);
    this.gauges = undefined;
  }

  private read(): Promise<Reading> {
    const now = Date.now();
    if (this.reading && now - this.reading.at < STATE_READING_TTL_MS) return this.reading.value;
    const value = this.readState();
    this.reading = { at: now, value };
    // A failed reading is not reused.
    void value.catch(() => {
      if (this.reading?.value === value) this.reading = undefined;
    });
    return value;
  }

  private async readState(): Promise<Reading> {
    const challenges = await this.state.listChallenges();
    const instances = new Map<string, [number, number]>();
    await Promise.all(
      challenges.map(async (c) => {
        const all = await this.state.listInstances(c.id);
        const pooled = all.filter(isPooled).length;
        instances.set(c.id, [all.length - pooled, pooled]);
      }),
    );
    return { challenges: challenges.length, instances };
  }
}

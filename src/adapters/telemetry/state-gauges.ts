import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  metrics,
  type BatchObservableCallback,
  type Meter,
  type ObservableGauge,
} from '@opentelemetry/api';
import { StateStore } from '../../shared/ports';
import { SERVICE_NAME, SERVICE_VERSION } from '../../shared/version';

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
  private meter: Meter | undefined;
  private gauges: [ObservableGauge, ObservableGauge] | undefined;
  private reading: { at: number; value: Promise<Reading> } | undefined;

  private readonly observe: BatchObservableCallback = async (result) => {
    if (!this.gauges) return;
    const [challenges, instances] = this.gauges;
    const reading = await this.read().catch(() => undefined);
    if (!reading) return;
    result.observe(challenges, reading.challenges);
    for (const [challenge, [claimed, pooled]] of reading.instances) {
      result.observe(instances, claimed, { challenge, pool: false });
      result.observe(instances, pooled, { challenge, pool: true });
    }
  };

  constructor(private readonly state: StateStore) {}

  onModuleInit(): void {
    this.meter = metrics.getMeter(SERVICE_NAME, SERVICE_VERSION);
    this.gauges = [
      this.meter.createObservableGauge('challenges', {
        description: 'Number of registered challenges',
      }),
      this.meter.createObservableGauge('instances', {
        description: 'Number of instances, by challenge and pool (pooled or claimed)',
      }),
    ];
    this.meter.addBatchObservableCallback(this.observe, this.gauges);
  }

  onModuleDestroy(): void {
    if (this.meter && this.gauges)
      this.meter.removeBatchObservableCallback(this.observe, this.gauges);
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
        const pooled = all.filter((i) => i.sourceId === undefined).length;
        instances.set(c.id, [all.length - pooled, pooled]);
      }),
    );
    return { challenges: challenges.length, instances };
  }
}

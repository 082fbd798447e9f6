import { describe, expect, it } from 'vitest';
import { telemetryEnvFrom } from './telemetry-env';

describe('telemetryEnvFrom', () => {
  it('should export nothing when no endpoint and no exporter are set', () => {
    expect(telemetryEnvFrom({})).toEqual({
      disabled: false,
      traces: false,
      metrics: false,
      logs: false,
      propagators: false,
      serviceName: 'chall-manager',
    });
  });

  it('should leave the propagators to the SDK when OTEL_PROPAGATORS is set', () => {
    expect(telemetryEnvFrom({ OTEL_PROPAGATORS: 'b3' })).toMatchObject({ propagators: true });
    expect(telemetryEnvFrom({ OTEL_PROPAGATORS: ' ' })).toMatchObject({ propagators: false });
  });

  it('should export every signal when OTEL_EXPORTER_OTLP_ENDPOINT is set', () => {
    const env = telemetryEnvFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317' });
    expect(env).toMatchObject({ traces: true, metrics: true, logs: true });
  });

  it('should export only the signal whose endpoint is set when a per-signal endpoint is given', () => {
    const env = telemetryEnvFrom({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces',
    });
    expect(env).toMatchObject({ traces: true, metrics: false, logs: false });
  });

  it('should switch a signal off when its exporter is none despite an endpoint', () => {
    const env = telemetryEnvFrom({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: ' none ',
    });
    expect(env).toMatchObject({ traces: true, metrics: false, logs: false });
  });

  it('should switch a signal on when its exporter is named without an endpoint', () => {
    expect(telemetryEnvFrom({ OTEL_TRACES_EXPORTER: 'console' })).toMatchObject({
      traces: true,
      metrics: false,
    });
  });

  it('should leave the service name to the SDK when OTEL_SERVICE_NAME or service.name is set', () => {
    expect(telemetryEnvFrom({ OTEL_SERVICE_NAME: 'cm-a' }).serviceName).toBeUndefined();
    expect(
      telemetryEnvFrom({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.name=x' })
        .serviceName,
    ).toBeUndefined();
    expect(telemetryEnvFrom({ OTEL_RESOURCE_ATTRIBUTES: 'my.service.name=x' }).serviceName).toBe(
      'chall-manager',
    );
  });

  it('should report the SDK disabled when OTEL_SDK_DISABLED is true', () => {
    expect(telemetryEnvFrom({ OTEL_SDK_DISABLED: 'TRUE' }).disabled).toBe(true);
  });
});

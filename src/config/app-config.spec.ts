import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { AppConfig, ConfigError } from './app-config';

describe('AppConfig', () => {
  describe('fromEnv', () => {
    it('should apply upstream defaults when nothing is set', () => {
      const c = AppConfig.fromEnv({});
      expect(c.port).toBe(8080);
      expect(c.logLevel).toBe('info');
      expect(c.swagger).toBe(false);
      expect(c.dir.endsWith('chall-manager')).toBe(true);
      expect(c.etcd.endpoints).toEqual([]);
      expect(Object.isFrozen(c)).toBe(true);
    });

    it('should parse values when they are valid', () => {
      const c = AppConfig.fromEnv({
        PORT: '9090',
        DIR: '/srv/cm',
        LOG_LEVEL: 'debug',
        SWAGGER: 'true',
        OCI_INSECURE: '1',
        ETCD_ENDPOINT: '127.0.0.1:2379',
        ETCD_USERNAME: 'u',
      });
      expect(c.port).toBe(9090);
      expect(c.dir).toBe('/srv/cm');
      expect(c.logLevel).toBe('debug');
      expect(c.swagger).toBe(true);
      expect(c.oci.insecure).toBe(true);
      expect(c.etcd).toEqual({
        endpoints: ['127.0.0.1:2379'],
        username: 'u',
        password: '',
        leaseTtlSeconds: 10,
      });
    });

    it.each([
      [{ PORT: 'eighty' }, 'PORT'],
      [{ PORT: '70000' }, 'PORT'],
      [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
      [{ SWAGGER: 'yes please' }, 'SWAGGER'],
      [{ ETCD_USERNAME: 'root' }, 'ETCD_USERNAME'],
      [{ ETCD_ENDPOINT: 'not a host' }, 'ETCD_ENDPOINT'],
    ])('should name the variable when %o is invalid', (env, name) => {
      expect(() => AppConfig.fromEnv(env)).toThrow(ConfigError);
      expect(() => AppConfig.fromEnv(env)).toThrow(name);
    });
  });
});

describe('AppConfig etcd', () => {
  it('should split a comma-separated list of cluster members', () => {
    const c = AppConfig.fromEnv({
      ETCD_ENDPOINT: '127.0.0.1:12379, http://127.0.0.1:22379',
      ETCD_LEASE_TTL: '5s',
    });
    expect(c.etcd.endpoints).toEqual(['127.0.0.1:12379', 'http://127.0.0.1:22379']);
    expect(c.etcd.leaseTtlSeconds).toBe(5);
  });

  it.each(['1', 'ten', '2.5'])('should name ETCD_LEASE_TTL when it is %j', (ttl) => {
    expect(() => AppConfig.fromEnv({ ETCD_ENDPOINT: 'e:1', ETCD_LEASE_TTL: ttl })).toThrow(
      'ETCD_LEASE_TTL',
    );
  });

  it('should refuse a TLS endpoint', () => {
    expect(() => AppConfig.fromEnv({ ETCD_ENDPOINT: 'https://e:2379' })).toThrow('ETCD_ENDPOINT');
  });
});

describe('AppConfig scenario environment', () => {
  it('should blank the service credentials when building the programs environment', () => {
    const c = AppConfig.fromEnv({
      OCI_PASSWORD: 's3cret',
      KUBECONFIG: '/k',
      PULUMI_CONFIG_PASSPHRASE: 'p',
    });
    expect(c.iac.programEnv.OCI_PASSWORD).toBe('');
    expect(c.iac.programEnv.PULUMI_CONFIG_PASSPHRASE).toBe('');
    expect(c.iac.programEnv.KUBECONFIG).toBe('/k');
    expect(c.iac.passphrase).toBe('p');
  });

  it('should hide FLAG_HASH_KEY from scenario programs and refuse a short one', () => {
    const c = AppConfig.fromEnv({ FLAG_HASH_KEY: 'k'.repeat(16) });
    expect(c.iac.programEnv.FLAG_HASH_KEY).toBe('');
    expect(c.flags.hashKey).toBe('k'.repeat(16));
    expect(() => AppConfig.fromEnv({ FLAG_HASH_KEY: 'short' })).toThrow('FLAG_HASH_KEY');
  });

  it('should default the flag settings to a week of retention and 10 checks a minute', () => {
    expect(AppConfig.fromEnv({}).flags).toEqual({
      hashKey: undefined,
      retentionMs: 168 * 3_600_000,
      checkLimit: 10,
      checkWindowMs: 60_000,
    });
  });

  it('should name the variable when a size or duration is invalid', () => {
    expect(() => AppConfig.fromEnv({ OCI_MAX_LAYER_SIZE: 'huge' })).toThrow('OCI_MAX_LAYER_SIZE');
    expect(() => AppConfig.fromEnv({ IAC_TIMEOUT: '0s' })).toThrow('IAC_TIMEOUT');
    expect(() => AppConfig.fromEnv({ OCI_TRANSFER_TIMEOUT: 'soon' })).toThrow(
      'OCI_TRANSFER_TIMEOUT',
    );
  });

  it('should give new instances 60s to answer their readiness probes unless READINESS_TIMEOUT says otherwise', () => {
    expect(AppConfig.fromEnv({}).readiness.timeoutMs).toBe(60_000);
    expect(AppConfig.fromEnv({ READINESS_TIMEOUT: '2m30s' }).readiness.timeoutMs).toBe(150_000);
    expect(() => AppConfig.fromEnv({ READINESS_TIMEOUT: '0' })).toThrow('READINESS_TIMEOUT');
    expect(() => AppConfig.fromEnv({ READINESS_TIMEOUT: 'soon' })).toThrow('READINESS_TIMEOUT');
  });

  it('should bound whole registry transfers by 5m unless OCI_TRANSFER_TIMEOUT says otherwise', () => {
    expect(AppConfig.fromEnv({}).oci.transferTimeoutMs).toBe(5 * 60_000);
    expect(AppConfig.fromEnv({ OCI_TRANSFER_TIMEOUT: '90s' }).oci.transferTimeoutMs).toBe(90_000);
  });

  it('should give requests in flight 30s on SIGTERM unless SHUTDOWN_GRACE says otherwise', () => {
    expect(AppConfig.fromEnv({}).shutdownGraceMs).toBe(30_000);
    expect(AppConfig.fromEnv({ SHUTDOWN_GRACE: '2m' }).shutdownGraceMs).toBe(120_000);
    expect(() => AppConfig.fromEnv({ SHUTDOWN_GRACE: 'never' })).toThrow('SHUTDOWN_GRACE');
  });
});

describe('AppConfig bounds of work', () => {
  it('should default to one IaC operation per CPU and pools of at most 100', () => {
    const c = AppConfig.fromEnv({});
    expect(c.iac.concurrency).toBe(availableParallelism());
    expect(c.pool.maxSize).toBe(100);
  });

  it('should read IAC_CONCURRENCY and POOL_MAX_SIZE', () => {
    const c = AppConfig.fromEnv({ IAC_CONCURRENCY: '3', POOL_MAX_SIZE: '20' });
    expect(c.iac.concurrency).toBe(3);
    expect(c.pool.maxSize).toBe(20);
  });

  it.each([
    [{ IAC_CONCURRENCY: '0' }, 'IAC_CONCURRENCY'],
    [{ POOL_MAX_SIZE: '-1' }, 'POOL_MAX_SIZE'],
  ])('should name the variable when %o is invalid', (env, name) => {
    expect(() => AppConfig.fromEnv(env)).toThrow(name);
  });
});

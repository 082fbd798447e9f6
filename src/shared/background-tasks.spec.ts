import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { deferred } from '../../test/contract/helpers';
import { BackgroundTasks } from './background-tasks';

describe('BackgroundTasks', () => {
  let tasks: BackgroundTasks;
  let errors: MockInstance<Logger['error']>;

  beforeEach(() => {
    tasks = new BackgroundTasks();
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  describe('run', () => {
    it('should return at once and track the task when the work is still running', async () => {
      const gate = deferred();
      let done = false;
      tasks.run('slow', async () => {
        await gate.promise;
        done = true;
      });
      expect(tasks.size).toBe(1);
      expect(done).toBe(false);
      gate.resolve();
      await tasks.drain();
      expect(done).toBe(true);
      expect(tasks.size).toBe(0);
    });

    it('should log and swallow the error when the work rejects', async () => {
      tasks.run('failing', () => Promise.reject(new Error('pulumi up failed')));
      await expect(tasks.drain()).resolves.toBeUndefined();
      expect(errors).toHaveBeenCalledTimes(1);
      expect(String(errors.mock.calls[0]?.[0])).toContain('failing');
      expect(tasks.size).toBe(0);
    });

    it('should log and swallow the error when the work throws synchronously', async () => {
      expect(() =>
        tasks.run('sync', () => {
          throw new Error('sync boom');
        }),
      ).not.toThrow();
      await tasks.drain();
      expect(errors).toHaveBeenCalledTimes(1);
    });
  });

  describe('drain', () => {
    it('should resolve at once when nothing runs', async () => {
      await expect(tasks.drain()).resolves.toBeUndefined();
    });

    it('should wait for tasks started while draining', async () => {
      const order: string[] = [];
      const gate = deferred();
      tasks.run('parent', async () => {
        await gate.promise;
        order.push('parent');
        tasks.run('child', async () => {
          await Promise.resolve();
          order.push('child');
        });
      });
      const drained = tasks.drain();
      gate.resolve();
      await drained;
      expect(order).toEqual(['parent', 'child']);
      expect(tasks.size).toBe(0);
    });
  });

  describe('onApplicationShutdown', () => {
    it('should abort the signal and wait for the work to stop', async () => {
      let seen: AbortSignal | undefined;
      let stopped = false;
      tasks.run('long', (signal) => {
        seen = signal;
        return new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            stopped = true;
            resolve();
          }),
        );
      });
      expect(seen?.aborted).toBe(false);
      await tasks.onApplicationShutdown();
      expect(seen?.aborted).toBe(true);
      expect(stopped).toBe(true);
      expect(tasks.size).toBe(0);
    });

    it('should not log an error when the work rejects because of the shutdown', async () => {
      tasks.run('long', (signal) => {
        return new Promise<void>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error)),
        );
      });
      await tasks.onApplicationShutdown();
      expect(errors).not.toHaveBeenCalled();
    });
  });
});

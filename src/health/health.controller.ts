import { Controller, Get, HttpCode } from '@nestjs/common';
import { getHeapStatistics } from 'node:v8';
import { SERVICE_NAME, SERVICE_VERSION } from '../shared/version';

/** Answer of `GET /healthcheck`, shaped as upstream's (hellofresh/health-go v5). */
export interface HealthReport {
  status: 'OK' | 'Partially Available' | 'Unavailable' | 'Timeout during health check';
  timestamp: string;
  failures?: Record<string, string>;
  system: {
    version: string;
    goroutines_count: number;
    total_alloc_bytes: number;
    heap_objects_count: number;
    alloc_bytes: number;
  };
  component: { name: string; version: string };
}

@Controller()
export class HealthController {
  @Get('healthcheck')
  @HttpCode(200)
  check(): HealthReport {
    const heap = getHeapStatistics();
    const mem = process.memoryUsage();
    return {
      status: 'OK',
      timestamp: new Date().toISOString(),
      // Same keys as upstream's Go runtime figures, filled with Node's nearest equivalents.
      system: {
        version: process.version,
        goroutines_count: process.getActiveResourcesInfo().length,
        total_alloc_bytes: heap.total_heap_size,
        heap_objects_count: heap.number_of_native_contexts + heap.number_of_detached_contexts,
        alloc_bytes: mem.heapUsed,
      },
      component: { name: SERVICE_NAME, version: SERVICE_VERSION },
    };
  }
}

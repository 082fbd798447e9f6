import { Module } from '@nestjs/common';
import { Clock } from '../shared/ports/clock.port';
import { SystemClock } from './clock/system-clock.adapter';

/** Binds every port to its adapter. Imported explicitly by the contexts that need ports. */
@Module({
  providers: [{ provide: Clock, useClass: SystemClock }],
  exports: [Clock],
})
export class AdaptersModule {}

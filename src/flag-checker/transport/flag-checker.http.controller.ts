import { All, Body, Controller, HttpCode, MethodNotAllowedException, Post } from '@nestjs/common';
import type { CheckResponseJson } from '../../shared/transport/api-messages.generated';
import { FlagCheckerService } from '../flag-checker.service';
import { checkFromJson, checkResultToJson } from './flag.wire';

/** api.v1.flag.FlagChecker over REST, in the style of the gateway's other routes. */
@Controller('api/v1/flag')
export class FlagCheckerHttpController {
  constructor(private readonly checker: FlagCheckerService) {}

  @Post('check')
  @HttpCode(200)
  async check(@Body() body: unknown): Promise<CheckResponseJson> {
    return checkResultToJson(await this.checker.check(checkFromJson(body)));
  }

  /** A known path with another method: the gateway's 501 "Method Not Allowed". Keep last. */
  @All('check')
  methodNotAllowed(): never {
    throw new MethodNotAllowedException();
  }
}

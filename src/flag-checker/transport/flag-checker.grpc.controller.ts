import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type {
  CheckRequestGrpc,
  CheckResponseGrpc,
  FlagCheckerGrpcHandlers,
} from '../../shared/transport/api-messages.generated';
import { FlagCheckerService } from '../flag-checker.service';
import { checkFromGrpc, checkResultToGrpc } from './flag.wire';

/** api.v1.flag.FlagChecker over gRPC. Errors go through the shared filter. */
@Controller()
export class FlagCheckerGrpcController implements FlagCheckerGrpcHandlers {
  constructor(private readonly checker: FlagCheckerService) {}

  @GrpcMethod('FlagChecker', 'Check')
  async check(req: CheckRequestGrpc): Promise<CheckResponseGrpc> {
    return checkResultToGrpc(await this.checker.check(checkFromGrpc(req)));
  }
}

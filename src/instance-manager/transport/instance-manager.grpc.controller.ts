import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { from, map, type Observable } from 'rxjs';
import type {
  CreateInstanceRequestGrpc,
  DeleteInstanceRequestGrpc,
  EmptyGrpc,
  InstanceGrpc,
  InstanceManagerGrpcHandlers,
  QueryInstanceRequestGrpc,
  RenewInstanceRequestGrpc,
  RetrieveInstanceRequestGrpc,
} from '../../shared/transport/api-messages.generated';
import { DrainState } from '../../shared/transport/drain';
import { InstanceManagerService } from '../instance-manager.service';
import {
  createInstanceFromGrpc,
  instanceKeyFromGrpc,
  instanceToGrpc,
  querySourceFromGrpc,
} from './instance.wire';

/**
 * api.v1.instance.InstanceManager over gRPC, typed by the handlers generated from the proto.
 * Errors go through the shared filter.
 */
@Controller()
export class InstanceManagerGrpcController implements InstanceManagerGrpcHandlers {
  constructor(
    private readonly instances: InstanceManagerService,
    private readonly drain: DrainState,
  ) {}

  @GrpcMethod('InstanceManager', 'CreateInstance')
  async createInstance(req: CreateInstanceRequestGrpc): Promise<InstanceGrpc> {
    return instanceToGrpc(
      await this.instances.create(createInstanceFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('InstanceManager', 'RetrieveInstance')
  async retrieveInstance(req: RetrieveInstanceRequestGrpc): Promise<InstanceGrpc> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    return instanceToGrpc(await this.instances.retrieve(challengeId, sourceId));
  }

  @GrpcMethod('InstanceManager', 'QueryInstance')
  queryInstance(req: QueryInstanceRequestGrpc): Observable<InstanceGrpc> {
    const sourceId = querySourceFromGrpc(req);
    return from(this.instances.query(sourceId)).pipe(map(instanceToGrpc));
  }

  @GrpcMethod('InstanceManager', 'RenewInstance')
  async renewInstance(req: RenewInstanceRequestGrpc): Promise<InstanceGrpc> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    return instanceToGrpc(await this.instances.renew(challengeId, sourceId, this.drain.signal));
  }

  @GrpcMethod('InstanceManager', 'DeleteInstance')
  async deleteInstance(req: DeleteInstanceRequestGrpc): Promise<EmptyGrpc> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    await this.instances.delete(challengeId, sourceId, this.drain.signal);
    return {};
  }
}

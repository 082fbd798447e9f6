import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { from, map, type Observable } from 'rxjs';
import { DrainState } from '../../shared/transport/drain';
import { InstanceManagerService } from '../instance-manager.service';
import {
  createInstanceFromGrpc,
  instanceKeyFromGrpc,
  instanceToGrpc,
  querySourceFromGrpc,
  type GrpcCreateInstanceRequest,
  type GrpcQueryInstanceRequest,
  type InstanceGrpc,
  type InstanceKey,
} from './instance.wire';

/** api.v1.instance.InstanceManager over gRPC. Errors go through the shared filter. */
@Controller()
export class InstanceManagerGrpcController {
  constructor(
    private readonly instances: InstanceManagerService,
    private readonly drain: DrainState,
  ) {}

  @GrpcMethod('InstanceManager', 'CreateInstance')
  async createInstance(req: GrpcCreateInstanceRequest): Promise<InstanceGrpc> {
    return instanceToGrpc(
      await this.instances.create(createInstanceFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('InstanceManager', 'RetrieveInstance')
  async retrieveInstance(req: InstanceKey): Promise<InstanceGrpc> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    return instanceToGrpc(await this.instances.retrieve(challengeId, sourceId));
  }

  @GrpcMethod('InstanceManager', 'QueryInstance')
  queryInstance(req: GrpcQueryInstanceRequest): Observable<InstanceGrpc> {
    const sourceId = querySourceFromGrpc(req);
    return from(this.instances.query(sourceId)).pipe(map(instanceToGrpc));
  }

  @GrpcMethod('InstanceManager', 'RenewInstance')
  async renewInstance(req: InstanceKey): Promise<InstanceGrpc> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    return instanceToGrpc(await this.instances.renew(challengeId, sourceId, this.drain.signal));
  }

  @GrpcMethod('InstanceManager', 'DeleteInstance')
  async deleteInstance(req: InstanceKey): Promise<Record<string, never>> {
    const { challengeId, sourceId } = instanceKeyFromGrpc(req);
    await this.instances.delete(challengeId, sourceId, this.drain.signal);
    return {};
  }
}

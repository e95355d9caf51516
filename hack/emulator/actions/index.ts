// Every action the emulator answers, by name.
import type { Action } from './action.ts';
import { DescribeInstances, DescribeNetworkInterfaceLimit, DescribeNetworkInterfaces, DescribeSubnets, DescribeVpcTaskResult, DescribeVpcs } from './describe.ts';
import { AllocateAddresses, AssociateAddress, DescribeAddressQuota, DescribeAddresses, DescribeTaskResult, DisassociateAddress, ReleaseAddresses } from './eip.ts';
import { AttachNetworkInterface, CreateNetworkInterface, DeleteNetworkInterface, DetachNetworkInterface, MigrateNetworkInterface } from './eni.ts';
import { AssignPrivateIpAddresses, MigratePrivateIpAddress, UnassignPrivateIpAddresses } from './ip.ts';

export const ACTIONS: Readonly<Record<string, Action>> = {
  DescribeVpcs,
  DescribeSubnets,
  DescribeNetworkInterfaces,
  DescribeNetworkInterfaceLimit,
  CreateNetworkInterface,
  AttachNetworkInterface,
  DetachNetworkInterface,
  DeleteNetworkInterface,
  MigrateNetworkInterface,
  AssignPrivateIpAddresses,
  UnassignPrivateIpAddresses,
  MigratePrivateIpAddress,
  DescribeVpcTaskResult,
  AllocateAddresses,
  AssociateAddress,
  DisassociateAddress,
  ReleaseAddresses,
  DescribeAddresses,
  DescribeAddressQuota,
  DescribeTaskResult,
  DescribeInstances,
};

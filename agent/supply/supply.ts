// Where the pool's ENIs and addresses come from: the one port between the pool's law (which ENI to fill,
// what to give back) and whoever changes the cloud. Standalone, the agent itself with the node's own
// credentials (cloud-supply.ts); in a cluster, tke-eni-ipamd through the node's NodeENIConfig
// (nec-supply.ts), the agent holding no credentials at all. The pool decides; a supply carries out.
import type { Eni, InstanceLimits } from '../cloud/cloud.ts';

/** A pod ENI of the node as a supply shows it: the cloud's view, with its subnet's CIDR. */
export interface SuppliedEni extends Eni {
  subnetCidr: string;
}

export interface SupplyView {
  /** the pod ENIs attached to this node for it, each with the secondary addresses ready on it */
  enis: SuppliedEni[];
  /** a change is still under way (look again soon) */
  settling: boolean;
}

/** One ENI as the cloud shows it, for a person debugging a pod (eni-cnictl doctor). */
export interface CloudEniFact {
  /** attached to this node */
  attachedHere: boolean;
  secondaryIps: string[];
  /** whose word it is: the cloud now, or ipamd's last look */
  source: string;
  /** how to see the same thing by hand */
  command: string;
}

export interface Supply {
  /** The node's quota: ENIs and addresses per ENI, the primary ones included. */
  limits(): Promise<InstanceLimits>;
  /** What the node holds now. ENIs in `referenced` hold a pod's address: never deleted as leftovers. */
  look(referenced: ReadonlySet<string>): Promise<SupplyView>;
  /**
   * Adds `count` secondary addresses to an ENI of the node (`urgent`: a pod waits for one). Answers the
   * addresses added, or none when they come later (a supply that works through ipamd).
   */
  assign(eniId: string, count: number, urgent: boolean): Promise<string[]>;
  /** A new ENI with `count` addresses, attached to the node; undefined when it comes later. */
  createEni(count: number, urgent: boolean): Promise<SuppliedEni | undefined>;
  /** Gives back idle addresses; the pool has taken them out first, so no pod gets one on its way out. */
  release(eniId: string, addresses: string[]): Promise<void>;
  /** Gives back an ENI that holds no secondary address. */
  deleteEni(eniId: string): Promise<void>;
  /** Addresses asked for that have not come yet: the pool counts them as soon free. */
  pending(): number;
  /**
   * The pool would never keep more than `most` addresses now (pods, waiting ADDs and the max warm target):
   * a supply still working on more than that may ask for less.
   */
  trim?(most: number): Promise<void>;
  /** Why the supply cannot give what was asked, when it says so (ipamd's reason: quota, subnet, zone). */
  problem?(): string | undefined;
  /** What the cloud says of one ENI of the node; undefined when it does not know the ENI. Reads only. */
  cloudEni(eniId: string): Promise<CloudEniFact | undefined>;
  /** Waits for work done on the side (leftovers being deleted). */
  drain(): Promise<void>;
}

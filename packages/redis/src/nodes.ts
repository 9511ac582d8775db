export interface ClusterNodeAddress {
  host: string
  port: number
}

/**
 * Parses `host:port,host:port` (REDIS_CLUSTER_NODES; IPv6 as `[::1]:7000`). Any one node is
 * enough for ioredis to discover the cluster; more survive that node being down at start.
 * Throws with the offending entry named.
 */
export function parseClusterNodes(value: string, variable = 'REDIS_CLUSTER_NODES'): ClusterNodeAddress[] {
  const entries = value.split(',').map((e) => e.trim()).filter(Boolean)
  if (entries.length === 0) throw new Error(`${variable}: expected host:port[,host:port…], got ${JSON.stringify(value)}`)
  return entries.map((entry) => {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(entry)
    const host = match?.[1] ?? match?.[2]
    const port = Number(match?.[3])
    if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new Error(`${variable}: ${JSON.stringify(entry)} is not host:port (e.g. 10.0.0.5:7000 or [::1]:7000)`)
    }
    return { host, port }
  })
}

export function formatClusterNodes(nodes: readonly ClusterNodeAddress[]): string {
  return nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',')
}

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
import { cacheDir } from './paths.ts'
import { canBind, choosePort, freePort } from './ports.ts'

const run = promisify(execFile)

/** 3.9.x: kafkajs 2.2.4 speaks protocol versions that Kafka 4 removed. */
export const KAFKA_VERSION = '3.9.1'

const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>clickjoin.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`

/** Fetches the broker's jars from Maven Central once; later calls return the cached folder. */
export async function ensureKafkaJars(log: (line: string) => void = () => undefined): Promise<string> {
  const dir = path.join(cacheDir, `kafka-${KAFKA_VERSION}`)
  const libs = path.join(dir, 'libs')
  const marker = path.join(dir, '.complete')
  if (existsSync(marker)) return libs
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'pom.xml'), pom)
  log(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${libs}`)
  try {
    await run('mvn', ['-q', '-B', '-f', path.join(dir, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], {
      maxBuffer: 16 * 1024 * 1024,
    })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`could not fetch the Kafka jars with Maven (is mvn installed?): ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
  const jars = (await readdir(libs)).filter((f) => f.endsWith('.jar'))
  if (!jars.some((f) => f.startsWith('kafka_2.13-'))) throw new Error(`no Kafka jar in ${libs}`)
  await writeFile(marker, `${jars.length} jars\n`)
  return libs
}

const toolsPom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>clickjoin.local</groupId>
  <artifactId>kafka-tools</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version></dependency>
  </dependencies>
</project>
`

/** Kafka's command-line tools as in its distribution's bin/, each a `java` call on our jars. */
const KAFKA_TOOLS: Record<string, string> = {
  'kafka-console-consumer': 'org.apache.kafka.tools.consumer.ConsoleConsumer',
  'kafka-console-producer': 'kafka.tools.ConsoleProducer',
  'kafka-topics': 'org.apache.kafka.tools.TopicCommand',
  'kafka-consumer-groups': 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
  'kafka-get-offsets': 'org.apache.kafka.tools.GetOffsetShell',
}

/**
 * Kafka's CLI tools (`kafka-console-consumer`, `kafka-topics`, …) in `.cache/kafka-<v>/bin`,
 * fetched once from Maven Central next to the broker's jars (their extra jars in `tools/`,
 * kept off the broker's classpath). Returns the bin folder.
 */
export async function ensureKafkaTools(log: (line: string) => void = () => undefined): Promise<string> {
  const libs = await ensureKafkaJars(log)
  const dir = path.join(cacheDir, `kafka-${KAFKA_VERSION}`)
  const tools = path.join(dir, 'tools')
  const bin = path.join(dir, 'bin')
  const marker = path.join(dir, '.tools-complete')
  if (existsSync(marker)) return bin
  await mkdir(tools, { recursive: true })
  await writeFile(path.join(tools, 'pom.xml'), toolsPom)
  log(`fetching Apache Kafka ${KAFKA_VERSION} command-line tools from Maven Central into ${tools}`)
  try {
    await run('mvn', ['-q', '-B', '-f', path.join(tools, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${tools}`, '-DincludeScope=runtime'], {
      maxBuffer: 16 * 1024 * 1024,
    })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`could not fetch the Kafka tools with Maven: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
  // Jars the broker's folder has too (kafka-clients, slf4j…): one copy on the classpath.
  const inLibs = new Set(await readdir(libs))
  for (const jar of await readdir(tools)) if (inLibs.has(jar)) await rm(path.join(tools, jar))
  await mkdir(bin, { recursive: true })
  const log4j = path.join(dir, 'tools-log4j.properties')
  await writeFile(log4j, 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n')
  for (const [name, mainClass] of Object.entries(KAFKA_TOOLS)) {
    const file = path.join(bin, name)
    await writeFile(
      file,
      `#!/bin/sh\n# written by @clickjoin/local-stack: Kafka ${KAFKA_VERSION}'s ${name}.sh\nexec java -Xmx512m -Dlog4j.configuration=file:${log4j} -cp '${tools}/*:${libs}/*' ${mainClass} "$@"\n`,
    )
    await chmod(file, 0o755)
  }
  await writeFile(marker, `${Object.keys(KAFKA_TOOLS).join(' ')}\n`)
  return bin
}

export interface KafkaBrokerOptions {
  /** Holds the log dirs, the config and kafka.log. */
  dataDir: string
  /** 0 picks a free port. */
  port: number
  /** Default: port + 1 for a fixed port (so a restart on the same data dir keeps it), else a free one. */
  controllerPort?: number
  heapMb?: number
  /** Partitions of auto-created internal topics and the default for new topics. */
  defaultPartitions?: number
  log?: (line: string) => void
  /** One node of a cluster (startKafkaCluster); default a single node. */
  cluster?: { nodeId: number; voters: string; clusterId: string; size: number }
}

export interface KafkaBroker {
  brokers: string[]
  process: ManagedProcess
  stop(): Promise<void>
}

interface NodeProperties {
  port: number
  controllerPort: number
  logDir: string
  partitions: number
  /** 1 for a single broker. */
  nodeId?: number
  /** `id@host:port,…` of every controller; default this node alone. */
  voters?: string
  /** Replicas of the internal topics (offsets, transactions): the cluster size, up to 3. */
  internalReplicas?: number
}

function serverProperties(o: NodeProperties): string {
  const internal = o.internalReplicas ?? 1
  return `# written by @clickjoin/local-stack: a KRaft node, broker and controller combined
process.roles=broker,controller
node.id=${o.nodeId ?? 1}
controller.quorum.voters=${o.voters ?? `1@127.0.0.1:${o.controllerPort}`}
listeners=PLAINTEXT://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${o.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${o.logDir}
num.partitions=${o.partitions}
auto.create.topics.enable=false
offsets.topic.replication.factor=${internal}
offsets.topic.num.partitions=${o.partitions}
transaction.state.log.replication.factor=${internal}
transaction.state.log.min.isr=${Math.min(2, internal)}
transaction.state.log.num.partitions=${o.partitions}
group.initial.rebalance.delay.ms=0
min.insync.replicas=1
`
}

const log4jProperties = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.kafka.controller=WARN
`

/**
 * A KRaft cluster ID: a base64url UUID of 22 characters that never begins with `-`, since
 * `kafka-storage format -t <id>` would read such an ID as an option (1 random ID in 64 did).
 * The top bit of the first byte is cleared, so the first character is one of `A`–`f`
 * (Kafka's own `Uuid.randomUuid()` avoids the same prefix).
 */
export function kraftClusterId(bytes: Buffer = randomBytes(16)): string {
  const id = Buffer.from(bytes)
  id[0] = id[0]! & 0x7f
  return id.toString('base64url')
}

/**
 * Starts Apache Kafka in KRaft combined mode as a child process. The storage is formatted
 * on first use only, so a broker on an existing data dir resumes with its topics and offsets.
 */
export async function startKafkaBroker(options: KafkaBrokerOptions): Promise<KafkaBroker> {
  const log = options.log ?? (() => undefined)
  const libs = await ensureKafkaJars(log)
  const port = await choosePort(options.port, 'Kafka')
  // The controller listens next to the broker when it can (9093 beside 9092); a neighbour port
  // that something holds (often the local end of another process's connection) would make the
  // broker exit at start, so a free one is taken instead. Only node IDs are stored in the
  // quorum state, so a restart may use another controller port.
  const controllerPort =
    options.controllerPort ?? (options.port !== 0 && (await canBind(options.port + 1)) ? options.port + 1 : await freePort())
  const logDir = path.join(options.dataDir, 'logs')
  await mkdir(logDir, { recursive: true })
  const configFile = path.join(options.dataDir, 'server.properties')
  const cluster = options.cluster
  await writeFile(
    configFile,
    serverProperties({
      port,
      controllerPort,
      logDir,
      partitions: options.defaultPartitions ?? 4,
      ...(cluster ? { nodeId: cluster.nodeId, voters: cluster.voters, internalReplicas: Math.min(3, cluster.size) } : {}),
    }),
  )
  const log4jFile = path.join(options.dataDir, 'log4j.properties')
  await writeFile(log4jFile, log4jProperties)
  const classpath = path.join(libs, '*')
  const jvm = [`-Xms128m`, `-Xmx${options.heapMb ?? 768}m`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4jFile}`]

  if (!existsSync(path.join(logDir, 'meta.properties'))) {
    await run('java', [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', cluster?.clusterId ?? kraftClusterId(), '-c', configFile], {
      maxBuffer: 16 * 1024 * 1024,
    })
  }

  const proc = startProcess('kafka', 'java', [...jvm, '-cp', classpath, 'kafka.Kafka', configFile], {
    logFile: path.join(options.dataDir, 'kafka.log'),
  })
  const brokers = [`127.0.0.1:${port}`]
  const kafka = new Kafka({ brokers, clientId: 'local-stack-probe', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
  const admin = kafka.admin()
  try {
    await waitUntilReady(
      proc,
      async () => {
        await admin.connect()
        const described = await admin.describeCluster()
        return described.brokers.length >= (cluster?.size ?? 1) && described.controller !== null
      },
      90_000,
      `Kafka answering on ${brokers[0]} (log: ${path.join(options.dataDir, 'kafka.log')})`,
    )
  } catch (err) {
    await proc.stop(5_000)
    throw err
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
  log(`Kafka ${KAFKA_VERSION} ready on ${brokers[0]} (pid ${proc.pid})`)
  return { brokers, process: proc, stop: () => proc.stop(30_000) }
}

export interface KafkaCluster {
  /** Every node's address, for KAFKA_BROKERS. */
  brokers: string[]
  nodes: KafkaBroker[]
  /** Starts node `index` again on its data (after a stop or kill). */
  restart(index: number): Promise<void>
  stop(): Promise<void>
}

/**
 * A KRaft cluster of `size` combined broker+controller nodes (default 3) on free ports, for tests
 * of replication: topics with KAFKA_REPLICATION_FACTOR=3 survive one node stopping. Each node
 * keeps its data under `<dataDir>/node-<id>`.
 */
export async function startKafkaCluster(options: { dataDir: string; size?: number; heapMb?: number; log?: (line: string) => void }): Promise<KafkaCluster> {
  const size = options.size ?? 3
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ port: await freePort(), controllerPort: await freePort() })))
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.controllerPort}`).join(',')
  const clusterId = kraftClusterId()
  const nodeOptions = (i: number): KafkaBrokerOptions => ({
    dataDir: path.join(options.dataDir, `node-${i + 1}`),
    port: ports[i]!.port,
    controllerPort: ports[i]!.controllerPort,
    heapMb: options.heapMb ?? 384,
    cluster: { nodeId: i + 1, voters, clusterId, size },
    ...(options.log ? { log: options.log } : {}),
  })
  // Started together: a controller quorum needs a majority before any node is ready.
  const started = await Promise.allSettled(ports.map((_, i) => startKafkaBroker(nodeOptions(i))))
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()))
    throw failed.reason
  }
  const cluster: KafkaCluster = {
    brokers: ports.map((p) => `127.0.0.1:${p.port}`),
    nodes,
    async restart(index) {
      // Alone it cannot see all `size` brokers until the others answer: the others are up.
      nodes[index] = await startKafkaBroker(nodeOptions(index))
    },
    async stop() {
      await Promise.all(cluster.nodes.map((n) => n.stop()))
    },
  }
  return cluster
}

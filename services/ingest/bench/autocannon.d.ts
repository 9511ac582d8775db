// autocannon ships no types; the part of its API the benchmark uses.
declare module 'autocannon' {
  interface Histogram {
    average: number
    mean: number
    p50: number
    p90: number
    p99: number
    max: number
  }
  export interface Result {
    requests: Histogram & { total: number; sent: number }
    latency: Histogram
    errors: number
    timeouts: number
    non2xx: number
    statusCodeStats: Record<string, { count: number }>
    duration: number
  }
  export interface Options {
    url: string
    connections?: number
    duration?: number
    pipelining?: number
    /** Requests per second over all connections (default: as fast as the server answers). */
    overallRate?: number
    headers?: Record<string, string>
    method?: string
    body?: string
  }
  export default function autocannon(options: Options): Promise<Result>
}

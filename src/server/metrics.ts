import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from "prom-client";
import type { JobState } from "./jobs.js";

/** One process's metrics as prom-client writes them for aggregation (a worker sends these through Redis). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Job durations from seconds (a small picture) to hours (a large one). */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200];

/**
 * The metrics of the jobs a process runs, by worker (the server itself is worker "local"): how many
 * ended in each state, how long they took, and the evaluations they ran and at what speed. The
 * server adds the line's gauges (waiting, running) and writes the whole in Prometheus' text format,
 * summed with the workers' own (prom-client's aggregation, as for a cluster's processes).
 */
export class JobMetrics {
  readonly registry = new Registry();
  private readonly ended = new Counter({
    name: "stylegram_jobs_total",
    help: "Jobs that ended, by how they ended (done, failed, cancelled)",
    labelNames: ["state"],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "stylegram_job_duration_seconds",
    help: "Seconds a job ran on a worker (to its ending, or until it was handed back), by worker",
    labelNames: ["worker"],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly evaluations = new Counter({
    name: "stylegram_evaluations_total",
    help: "Loss evaluations (iterations) run, by worker",
    labelNames: ["worker"],
    registers: [this.registry],
  });
  private readonly speed = new Gauge({
    name: "stylegram_evaluations_per_second",
    help: "Evaluations per second of the last job that ran an iteration, by worker",
    labelNames: ["worker"],
    registers: [this.registry],
  });

  /** Counts a job's ending; with its seconds and evaluations when it ran on `worker`. */
  jobEnded(worker: string, state: JobState, seconds?: number, evaluations?: number): void {
    this.ended.inc({ state });
    if (seconds !== undefined) this.ran(worker, seconds, evaluations);
  }

  /** A run of a job on `worker` that did not end it (handed back to the queue), or did. */
  ran(worker: string, seconds: number, evaluations?: number): void {
    this.duration.observe({ worker }, seconds);
    if (evaluations !== undefined && evaluations > 0) {
      this.evaluations.inc({ worker }, evaluations);
      if (seconds > 0) this.speed.set({ worker }, evaluations / seconds);
    }
  }

  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }
}

/** The line's state now, as gauges of a registry of their own (they are the server's, never summed). */
export function lineGauges(counts: { waiting: number; running: number }): Registry {
  const registry = new Registry();
  new Gauge({ name: "stylegram_jobs_waiting", help: "Jobs waiting for a worker", registers: [registry] }).set(
    counts.waiting,
  );
  new Gauge({ name: "stylegram_jobs_running", help: "Jobs running on a worker", registers: [registry] }).set(
    counts.running,
  );
  return registry;
}

/** Prometheus' text format of the line's gauges and every process's job metrics, summed. */
export async function metricsText(gauges: Registry, processes: MetricsJson[]): Promise<string> {
  const summed = AggregatorRegistry.aggregate(processes.length > 0 ? processes : [[]]);
  return `${await gauges.metrics()}${await summed.metrics()}`;
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** A running metrics exporter. */
export interface MetricsExporter {
  /**
   * Stops following the breakers (their calls cost nothing more) and removes the metrics
   * this exporter registered. Calling it again does nothing.
   */
  stop(): void;
}

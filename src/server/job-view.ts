import type { JobState } from "./jobs.js";

/**
 * A job as GET /api/jobs/:id and the events' snapshot show it: the one shape the server sends, the
 * page reads and the tests check.
 */
export interface JobView {
  id: string;
  state: JobState;
  /** 1-based place in the line while it waits; null otherwise. */
  position: number | null;
  iteration: number;
  iterations: number;
  loss: number | null;
  error: string | null;
  /** Seconds since it started. */
  elapsed: number;
  /** Seconds left (0 once done; null while unknown or after a failure or cancel). */
  eta: number | null;
  /** The set-up step it is in, before the first iteration. */
  stage: string | null;
  /** The URL of the latest preview frame. */
  preview: string | null;
  /** [iteration, loss] of every iteration so far, for the plot. */
  losses: [number, number][];
  /** The uploaded files' names. */
  content: string;
  styles: string[];
  options: Record<string, unknown>;
  /** The `stylegram` command that makes the same picture. */
  command: string;
  result: { width: number; height: number; png: string; jpeg: string; webp: string } | null;
  expiresAt: string | null;
}

/** The result's download links, one per format the API converts to. */
export function resultLinks(
  id: string,
  size: { width: number; height: number },
): NonNullable<JobView["result"]> {
  const base = `/api/jobs/${id}/result?format=`;
  return { ...size, png: `${base}png`, jpeg: `${base}jpeg`, webp: `${base}webp` };
}

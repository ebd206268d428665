import { Redis, type RedisOptions } from "ioredis";
import { UsageError } from "../errors.js";

/** BullMQ's prefix and the queue's name: keys "stylegram:jobs:*" are BullMQ's, "stylegram:job:*" ours. */
export const PREFIX = "stylegram";
export const QUEUE_NAME = "jobs";

/** Where the queue is: redis://[:PASSWORD@]HOST[:PORT][/DB], or rediss:// for TLS. */
export interface QueueAddress {
  url: string;
  /** The URL without its password, for messages and logs. */
  shown: string;
  options: RedisOptions;
}

/**
 * Reads --queue. Only redis:// and rediss:// are taken: a mistyped scheme or a bare host:port is
 * named with the form to use, rather than handed to the client to fail on later.
 */
export function parseQueueUrl(text: string): QueueAddress {
  const expect =
    "a Redis URL such as redis://127.0.0.1:6379 (or redis://:PASSWORD@HOST:PORT/DB, rediss:// for TLS)";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--queue expects ${expect}, got "${text}"`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new UsageError(`--queue expects ${expect}, got "${text}" (scheme ${url.protocol.slice(0, -1)})`);
  }
  if (url.hostname === "") throw new UsageError(`--queue expects ${expect}: "${text}" names no host`);
  const port = url.port === "" ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d*$/.test(dbText)) {
    throw new UsageError(
      `--queue: the database after the port must be a number from 0 to 15, got "/${dbText}"`,
    );
  }
  const shown = `${url.protocol}//${url.password ? "***@" : ""}${url.host}${db === 0 ? "" : `/${db}`}`;
  return {
    url: text,
    shown,
    options: {
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port,
      db,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === "rediss:" ? { tls: {} } : {}),
      // BullMQ's workers and event readers block on Redis: a command waits for a reconnection
      // (a Redis restart) instead of failing after a few tries.
      maxRetriesPerRequest: null,
    },
  };
}

/**
 * A connection of our own (records, images, the admission script), with a name Redis' CLIENT LIST
 * shows. A worker's waits out a Redis restart (what it writes must not be lost); a server's fails
 * at once (`failFast`), so that a request gets a 503 instead of hanging.
 */
export function connect(address: QueueAddress, name: string, failFast = false): Redis {
  return new Redis({
    ...address.options,
    connectionName: name,
    ...(failFast ? { maxRetriesPerRequest: 1, enableOfflineQueue: false } : {}),
  });
}

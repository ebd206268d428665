import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Debian's redis-server (.ci/run installs it). */
export const REDIS_SERVER = "/usr/bin/redis-server";

/** A redis-server of a test's own: a free loopback port, a temporary folder, and ways to end it. */
export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** Ends it as a crash does (SIGKILL): what AOF has written is all that survives. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder (with AOF: the same data). */
  restart(): Promise<void>;
  /** Ends it and removes its folder. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Options for tests that need redis-server: skipped on a developer's machine without it, but under
 * CI=true its absence is a failure, never a skip (.ci/run installs it).
 */
export function needsRedis(): { skip?: string } {
  if (fs.existsSync(REDIS_SERVER)) return {};
  if (process.env.CI === "true")
    throw new Error(`CI=true but ${REDIS_SERVER} is missing: apt-get install redis-server`);
  return { skip: `no ${REDIS_SERVER} (apt-get install redis-server)` };
}

/**
 * Starts redis-server on a free port in a new temporary folder, with AOF (appendfsync always: a
 * SIGKILL loses nothing written) when `aof`, and maxmemory-policy noeviction as docs/deploy.md
 * asks. Resolves once it accepts connections.
 */
export async function startRedis(o: { aof?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--maxmemory-policy",
    "noeviction",
    ...(o.aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
  ];
  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    let printed = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${printed}`)), 10_000);
      c.stdout?.on("data", (d: Buffer) => {
        printed += d.toString();
        if (/Ready to accept connections/.test(printed)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${printed}`));
      });
    });
    c.removeAllListeners("exit");
    c.stdout?.resume();
  };
  const end = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill: () => end("SIGKILL"),
    restart: launch,
    stop: async () => {
      await end("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

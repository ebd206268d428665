import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** The private folders of servers: `stylegram-serve-` and mkdtemp's six characters. */
const PREFIX = "stylegram-serve-";
const NAME = /^stylegram-serve-[A-Za-z0-9]{6}$/;
/** The file in each folder that names its server. */
const OWNER = ".owner";
/** How often a server marks its folder as alive, and how long unmarked means it is gone. */
const HEARTBEAT_MS = 60_000;
const STALE_MS = 10 * HEARTBEAT_MS;

/** What tells this machine's processes from those of another (a container sharing /tmp). */
interface Owner {
  pid: number;
  host: string;
  /** The boot and pid namespace (Linux); two processes share pids only if both match. */
  boot: string | null;
  pidns: string | null;
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

function self(): Owner {
  let pidns: string | null = null;
  try {
    pidns = fs.readlinkSync("/proc/self/ns/pid");
  } catch {
    pidns = null;
  }
  return { pid: process.pid, host: os.hostname(), boot: read("/proc/sys/kernel/random/boot_id"), pidns };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, it is someone else's.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether a server's folder outlived its server (SIGKILL, a crash). Where its
 * pid means the same process as here (same host, boot and pid namespace), the
 * pid decides; elsewhere (another container sharing the folder) only a
 * heartbeat older than STALE_MS does. A pid reused by another process keeps a
 * folder, never the other way round.
 */
function stale(dir: string, me: Owner, now: number): boolean {
  const file = path.join(dir, OWNER);
  let owner: Owner;
  let beat: number;
  try {
    owner = JSON.parse(fs.readFileSync(file, "utf8")) as Owner;
    beat = fs.statSync(file).mtimeMs;
  } catch {
    return false; // not made by this code, or still being made: not ours to judge
  }
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  const here = owner.host === me.host && owner.boot === me.boot && owner.pidns === me.pidns;
  if (here && owner.pid === me.pid) return false;
  return here ? !alive(owner.pid) : now - beat > STALE_MS;
}

/**
 * Removes the private folders in `root` that this user's servers left behind
 * when they were killed; returns their paths. Only folders (not links) named
 * like ours, owned by this user, with an owner file that says their server is
 * gone.
 */
export function removeStaleDirs(root: string): string[] {
  const me = self();
  const uid = process.getuid?.();
  const now = Date.now();
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(root).filter((n) => NAME.test(n));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = path.join(root, name);
    try {
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      if (!stale(dir, me, now)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Gone meanwhile, or not ours to remove: leave it.
    }
  }
  return removed;
}

/**
 * A new private folder (mode 0700) in `root` with its owner file, kept marked
 * as alive while the process runs. `stop` ends the marking.
 */
export function makePrivateDir(root: string): { dir: string; stop: () => void } {
  const dir = fs.mkdtempSync(path.join(root, PREFIX));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, OWNER);
  fs.writeFileSync(file, JSON.stringify(self()), { mode: 0o600 });
  const timer = setInterval(() => {
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      // The folder is being removed.
    }
  }, HEARTBEAT_MS);
  timer.unref();
  return { dir, stop: () => clearInterval(timer) };
}

/** The name of the owner file, which a listing of the folder's jobs leaves out. */
export const OWNER_FILE = OWNER;

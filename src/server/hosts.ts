import net from "node:net";
import os from "node:os";

/** 127.0.0.0/8 and ::1, in every spelling (0:0:0:0:0:0:0:1, ::ffff:127.0.0.1): BlockList compares addresses, not text. */
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** Whether an IP address (or the name localhost) reaches this machine only. */
export function isLoopback(address: string): boolean {
  if (address.toLowerCase() === "localhost") return true;
  const family = net.isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? "ipv4" : "ipv6");
}

/**
 * The name in a Host header: `localhost:8080` -> `localhost`, `[::1]:80` -> `::1`.
 * Undefined for anything that is not exactly a name or address and an optional
 * port, such as `localhost:evil.example` or `a b`.
 */
export function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::\d{1,5})?$/i.exec(host);
  if (!m) return undefined;
  if (m[1] !== undefined) return net.isIPv6(m[1]) ? m[1].toLowerCase() : undefined;
  return (m[2] as string).toLowerCase();
}

/** This machine's addresses now (they change when a network comes and goes). */
function ownAddresses(): net.BlockList {
  const list = new net.BlockList();
  for (const infos of Object.values(os.networkInterfaces())) {
    for (const i of infos ?? []) list.addAddress(i.address, i.family === "IPv4" ? "ipv4" : "ipv6");
  }
  return list;
}

/**
 * The names a request may address this server by, whatever address it listens
 * on: localhost and the loopback addresses, this machine's own addresses, and
 * the names given (--allowed-host). A web site cannot make a browser send any
 * of these for its own pages (DNS rebinding gives the browser the attacker's
 * name), so that check holds on a network too.
 */
export function hostAllowList(names: readonly string[] = []): (hostHeader: string) => boolean {
  const allowed = new Set(["localhost", ...names.map((n) => n.toLowerCase())]);
  return (header) => {
    const name = hostName(header);
    if (name === undefined) return false;
    const family = net.isIP(name);
    // A name that merely looks numeric (127.999.999.999) is no address: it is a DNS name, and not ours.
    if (family === 0) return allowed.has(name);
    const type = family === 4 ? "ipv4" : "ipv6";
    return LOOPBACK.check(name, type) || allowed.has(name) || ownAddresses().check(name, type);
  };
}

/** An IPv6 address written out in full: eight groups of four hex digits. */
function expandIpv6(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted IPv4 (::ffff:1.2.3.4) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array(8 - left.length - right.length).fill("0");
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((g) => g.padStart(4, "0"));
}

/**
 * Whom a request's limits count against. IPv4 addresses each count alone; an
 * IPv6 client holds a whole /64 (a home or a cloud machine gets one), so it
 * counts as its /64; an IPv4 address mapped into IPv6 counts as itself. Every
 * loopback address is this machine, and any program on it can use any of
 * 127.0.0.0/8, so they are one client: "local".
 */
export function clientKey(ip: string): string {
  if (isLoopback(ip)) return "local";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1] as string;
  if (net.isIPv6(ip))
    return `${expandIpv6(ip.split("%")[0] as string)
      .slice(0, 4)
      .join(":")}::/64`;
  return ip;
}

import { isIP, isIPv4, isIPv6 } from "node:net";

/**
 * The address a limit counts against (the API key lockout, unauthenticated request budgets):
 * IPv4 (also when IPv4-mapped) as is, IPv6 by its /64, since one subscriber usually holds a
 * whole /64 and could otherwise rotate through 2^64 addresses. A port a proxy forwarded with the
 * address is dropped.
 */
export function clientAddressKey(ip: string | undefined): string {
  if (!ip) return "unknown";
  const address = ip.replace(/%.*$/, "");
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) {
    // Some proxies forward the client's port too (Azure Application Gateway's X-Forwarded-For:
    // `203.0.113.7:51234`, `[2001:db8::1]:51234`): counted per port, every new connection of
    // the client would start afresh.
    const host = /^(?:\[([^\]]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):\d{1,5}$/.exec(address);
    const unported = host?.[1] ?? host?.[2];
    return unported && isIP(unported) ? clientAddressKey(unported) : address.slice(0, 64);
  }
  const [head = "", tail = ""] = address.split("::");
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const missing = address.includes("::") ? 8 - headParts.length - tailParts.length : 0;
  const groups = [...headParts, ...Array<string>(missing).fill("0"), ...tailParts];
  return `${groups
    .slice(0, 4)
    .map((group) => group.toLowerCase().replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/**
 * The development sign-in: the console keeps the session token in the `__session` cookie, where
 * Clerk keeps it too, so the API authenticates both the same way. JavaScript-readable by design
 * (as Clerk's own cookie): the token is short-lived and the API checks the Origin of writes.
 */
const COOKIE = "__session";

/** Stores `token` as this origin's session cookie. */
export function setSessionCookie(token: string): void {
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${COOKIE}=${encodeURIComponent(token)}; Path=/; SameSite=Strict${secure}`;
}

/** Removes the session cookie (signing out of the development sign-in). */
export function clearSessionCookie(): void {
  document.cookie = `${COOKIE}=; Path=/; Max-Age=0; SameSite=Strict`;
}

/** Whether a session cookie is present. */
export function hasSessionCookie(): boolean {
  return document.cookie.split("; ").some((part) => part.startsWith(`${COOKIE}=`));
}

/** The deployment's settings the API writes into index.html (see the API's system/adminConsole.ts). */
export interface ConsoleSettings {
  clerkPublishableKey: string | null;
  isDevelopmentSignIn: boolean;
}

/** Reads the settings block; a page not served by the API (vite dev) gets the defaults. */
export function readSettings(): ConsoleSettings {
  const defaults: ConsoleSettings = { clerkPublishableKey: null, isDevelopmentSignIn: true };
  const text = document.getElementById("console-config")?.textContent ?? "{}";
  try {
    const parsed = JSON.parse(text) as Partial<ConsoleSettings>;
    return {
      clerkPublishableKey:
        typeof parsed.clerkPublishableKey === "string" ? parsed.clerkPublishableKey : null,
      isDevelopmentSignIn:
        typeof parsed.isDevelopmentSignIn === "boolean"
          ? parsed.isDevelopmentSignIn
          : defaults.isDevelopmentSignIn,
    };
  } catch {
    return defaults;
  }
}

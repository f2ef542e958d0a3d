// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require("../package.json") as { version: string };

/** The API's version, from its package.json. */
export const API_VERSION = pkg.version;

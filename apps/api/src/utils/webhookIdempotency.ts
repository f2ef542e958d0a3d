/** The exactly-once webhook primitives under their original entry point: see `webhooks/`. */
export * from "../webhooks";

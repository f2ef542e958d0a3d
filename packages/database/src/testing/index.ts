export * from "./factories";
export * from "./prepare";

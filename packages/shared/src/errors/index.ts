export * from "./http";
export * from "./codes";

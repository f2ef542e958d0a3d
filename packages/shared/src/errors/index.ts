export * from "./http";

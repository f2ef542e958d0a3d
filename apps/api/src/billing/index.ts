export * from "./access";
export * from "./BillingService";
export * from "./serializers";
export * from "./settings";
export * from "./stripeEvents";
export * from "./stripeProvider";
export * from "./subscriptionSync";
export * from "./violations";

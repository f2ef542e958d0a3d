import {
  AppError,
  BadGatewayError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  isAppError,
  NotFoundError,
  PayloadTooLargeError,
  PaymentRequiredError,
  ProviderNotConfiguredError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  ValidationError,
} from "./http";

describe("error hierarchy", () => {
  it.each([
    [new BadRequestError(), 400, "BAD_REQUEST"],
    [
      new ValidationError(undefined, { fields: [{ path: "title", message: "Required" }] }),
      400,
      "VALIDATION_ERROR",
    ],
    [new UnauthorizedError(), 401, "UNAUTHORIZED"],
    [new PaymentRequiredError(), 402, "PAYMENT_REQUIRED"],
    [new ForbiddenError(), 403, "FORBIDDEN"],
    [new NotFoundError(), 404, "NOT_FOUND"],
    [new ConflictError(), 409, "CONFLICT"],
    [new PayloadTooLargeError(), 413, "PAYLOAD_TOO_LARGE"],
    [new TooManyRequestsError(undefined, { retryAfterSeconds: 30 }), 429, "TOO_MANY_REQUESTS"],
    [new BadGatewayError(), 502, "BAD_GATEWAY"],
    [new ServiceUnavailableError(), 503, "SERVICE_UNAVAILABLE"],
    [
      new ProviderNotConfiguredError("no", {
        provider: "stripe",
        variables: ["STRIPE_SECRET_KEY"],
      }),
      503,
      "PROVIDER_NOT_CONFIGURED",
    ],
  ])("%s has its fixed status and code", (error, status, code) => {
    expect(error).toBeInstanceOf(AppError);
    expect(error).toBeInstanceOf(Error);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(isAppError(error)).toBe(true);
  });

  it("ProviderNotConfiguredError names the provider and its variables in details", () => {
    const error = new ProviderNotConfiguredError("Recall is not configured", {
      provider: "recall",
      variables: ["RECALL_API_KEY"],
    });
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error.toBody("req-1")).toEqual({
      error: {
        code: "PROVIDER_NOT_CONFIGURED",
        message: "Recall is not configured",
        details: { provider: "recall", variables: ["RECALL_API_KEY"] },
      },
      requestId: "req-1",
    });
  });

  it("TooManyRequestsError rounds retryAfterSeconds up and sends Retry-After", () => {
    const error = new TooManyRequestsError(undefined, { retryAfterSeconds: 12.2 });
    expect(error.retryAfterSeconds).toBe(13);
    expect(error.headers()).toEqual({ "Retry-After": "13" });
    expect(error.toBody("req-1")).toEqual({
      error: {
        code: "TOO_MANY_REQUESTS",
        message: "Too many requests",
        details: { retryAfterSeconds: 13 },
      },
      requestId: "req-1",
    });
  });

  it("UnauthorizedError sends WWW-Authenticate only with a challenge, which keeps code and details", () => {
    const refused = new UnauthorizedError("Invalid API key", {
      code: "INVALID_API_KEY",
      details: { keyId: "abc" },
    });
    expect(refused.headers()).toEqual({});
    const challenged = UnauthorizedError.withChallenge(refused, 'Bearer realm="zigznote"');
    expect(challenged.headers()).toEqual({ "WWW-Authenticate": 'Bearer realm="zigznote"' });
    expect(challenged.toBody("req-1")).toEqual(refused.toBody("req-1"));
    expect(challenged.status).toBe(401);
  });

  it("ValidationError lists field issues in details", () => {
    const error = new ValidationError(undefined, {
      fields: [{ path: "meetingUrl", message: "Invalid url" }],
    });
    expect(error.toBody()).toEqual({
      error: {
        code: "VALIDATION_ERROR",
        message: "Request validation failed",
        details: { fields: [{ path: "meetingUrl", message: "Invalid url" }] },
      },
    });
  });

  it("names each error after its class", () => {
    expect(new ConflictError("busy").name).toBe("ConflictError");
    expect(new ConflictError("busy").message).toBe("busy");
  });

  it("isAppError rejects plain errors and non-errors", () => {
    expect(isAppError(new Error("x"))).toBe(false);
    expect(isAppError({ status: 400, code: "X" })).toBe(false);
    expect(isAppError(null)).toBe(false);
  });
});

describe("error bodies", () => {
  it("always carry details, {} when there is nothing to add", () => {
    expect(new NotFoundError().toBody("req-2")).toEqual({
      error: { code: "NOT_FOUND", message: "Resource not found", details: {} },
      requestId: "req-2",
    });
  });
});

import type { PrismaClient } from "@zigznote/database";
import { SCOPES, type Scope } from "../http/scopes";
import { createApiKey, type ApiKeyView } from "./apiKeyService";
import * as store from "./store";
import type { NamedOrganization } from "./store";

/** What the operator asked for cannot be done as asked (the message says why and what to do). */
export class OperatorInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OperatorInputError";
  }
}

export interface BootstrapApiKeyInput {
  /** An organization id (UUID), a Clerk organization id (`org_...`) or an organization's name. */
  organization: string;
  name: string;
  scopes: readonly Scope[];
  expiresAt?: Date | null;
}

export interface BootstrappedApiKey {
  organization: NamedOrganization & { isCreated: boolean };
  apiKey: ApiKeyView;
  plainKey: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The scopes of a comma list, refusing any the API does not know. */
export function parseScopes(list: string): Scope[] {
  const scopes = list
    .split(",")
    .map((scope) => scope.trim())
    .filter(Boolean);
  const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
  if (unknown.length > 0 || scopes.length === 0) {
    throw new OperatorInputError(
      `unknown scope(s): ${unknown.join(", ") || "(none given)"}; known: ${SCOPES.join(", ")}`,
    );
  }
  return scopes as Scope[];
}

async function resolveOrganization(
  db: Parameters<typeof store.findOrganizationsNamed>[0],
  organization: string,
): Promise<BootstrappedApiKey["organization"]> {
  if (UUID.test(organization)) {
    const [found] = await store.findOrganizationsNamed(db, { id: organization });
    if (!found || found.deletedAt) {
      throw new OperatorInputError(
        `no organization has the id ${organization}; pass a name to create one`,
      );
    }
    return { ...found, isCreated: false };
  }
  const isClerkId = organization.startsWith("org_");
  await store.lockOrganizationName(db, organization);
  const found = await store.findOrganizationsNamed(
    db,
    isClerkId ? { clerkId: organization } : { name: organization },
  );
  if (found.length > 1) {
    throw new OperatorInputError(
      `${found.length} organizations are named "${organization}": pass one's id (${found
        .map((row) => row.id)
        .join(", ")})`,
    );
  }
  const [existing] = found;
  if (existing?.deletedAt) {
    throw new OperatorInputError(`the organization ${organization} was deleted`);
  }
  if (existing) return { ...existing, isCreated: false };
  const created = await store.insertOrganization(db, {
    // Clerk's organization events replace this name with the real one.
    name: organization,
    clerkId: isClerkId ? organization : null,
  });
  return { ...created, isCreated: true };
}

/**
 * The operators' way in on a database of their own (no Clerk yet): finds or creates the
 * organization and gives it an API key, in one transaction. The plain key exists only in the
 * answer; the database keeps its hash, as for every key.
 */
export async function bootstrapApiKey(
  deps: { db: PrismaClient },
  input: BootstrapApiKeyInput,
): Promise<BootstrappedApiKey> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) {
    throw new OperatorInputError("the key's name must be 1 to 100 characters");
  }
  return deps.db.$transaction(async (tx) => {
    const organization = await resolveOrganization(tx, input.organization.trim());
    const { apiKey, plainKey } = await createApiKey(
      { db: tx },
      {
        organizationId: organization.id,
        name,
        scopes: input.scopes,
        expiresAt: input.expiresAt ?? null,
      },
    );
    return { organization, apiKey, plainKey };
  });
}

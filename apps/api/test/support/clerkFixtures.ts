/**
 * Clerk webhook events in Clerk's own shapes (`{ data, object: "event", type, timestamp,
 * instance_id }`), generated from a small simulated Clerk so that every event agrees with the
 * state it describes (a membership embeds its organization as it is at that moment).
 */

export interface ClerkEventFixture {
  /** The Svix message id Clerk's webhook would carry (stable across retries). */
  msgId: string;
  body: {
    data: Record<string, unknown>;
    object: "event";
    type: string;
    timestamp: number;
    instance_id: string;
  };
}

interface SimUser {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  createdAt: number;
  updatedAt: number;
}

interface SimOrganization {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
}

export function clerkUserData(user: SimUser): Record<string, unknown> {
  const emailId = `idn_${user.id}`;
  return {
    id: user.id,
    object: "user",
    username: null,
    first_name: user.firstName,
    last_name: user.lastName,
    image_url: `https://img.clerk.com/${user.id}`,
    has_image: false,
    primary_email_address_id: emailId,
    primary_phone_number_id: null,
    primary_web3_wallet_id: null,
    password_enabled: true,
    two_factor_enabled: false,
    email_addresses: [
      {
        id: emailId,
        object: "email_address",
        email_address: user.email,
        linked_to: [],
        verification: { status: "verified", strategy: "email_code", attempts: 1, expire_at: null },
      },
    ],
    phone_numbers: [],
    web3_wallets: [],
    external_accounts: [],
    public_metadata: {},
    private_metadata: {},
    unsafe_metadata: {},
    external_id: null,
    last_sign_in_at: null,
    banned: false,
    locked: false,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
  };
}

function organizationData(organization: SimOrganization): Record<string, unknown> {
  return {
    id: organization.id,
    object: "organization",
    name: organization.name,
    slug: organization.name.toLowerCase().replace(/[^a-z0-9]+/g, "-"),
    image_url: `https://img.clerk.com/${organization.id}`,
    logo_url: null,
    has_image: false,
    created_by: null,
    public_metadata: {},
    private_metadata: {},
    max_allowed_memberships: 5,
    admin_delete_enabled: true,
    created_at: organization.createdAt,
    updated_at: organization.updatedAt,
  };
}

/**
 * A scenario over users, organizations and memberships (creations, updates, a role change,
 * membership removal, user and organization deletion), with ids prefixed by `prefix` so that
 * every run works on a fresh set. Same scenario for any prefix, clock starting at `startMs`.
 */
export function buildClerkScenario(prefix: string, startMs: number): ClerkEventFixture[] {
  const events: ClerkEventFixture[] = [];
  let clock = startMs;
  const tick = (): number => (clock += 1_000);
  const emit = (type: string, data: Record<string, unknown>, at: number): void => {
    events.push({
      msgId: `msg_${prefix}_${events.length}`,
      body: { data, object: "event", type, timestamp: at, instance_id: "ins_test" },
    });
  };

  const users: SimUser[] = ["ada", "grace", "linus", "barbara"].map((name) => {
    const at = tick();
    return {
      id: `user_${prefix}_${name}`,
      email: `${name}.${prefix}@example.test`,
      firstName: name[0]!.toUpperCase() + name.slice(1),
      lastName: "Tester",
      createdAt: at,
      updatedAt: at,
    };
  });
  for (const user of users) emit("user.created", clerkUserData(user), user.updatedAt);

  const organizations: SimOrganization[] = ["Acme", "Globex", "Initech"].map((name) => {
    const at = tick();
    return { id: `org_${prefix}_${name.toLowerCase()}`, name, createdAt: at, updatedAt: at };
  });
  for (const organization of organizations) {
    emit("organization.created", organizationData(organization), organization.updatedAt);
  }

  const membershipIds = new Map<string, string>();
  const membership = (
    type: "created" | "updated" | "deleted",
    organization: SimOrganization,
    user: SimUser,
    role: string,
    version: number,
  ): void => {
    const key = `${organization.id}/${user.id}/${version}`;
    if (!membershipIds.has(key)) membershipIds.set(key, `orgmem_${prefix}_${membershipIds.size}`);
    const at = tick();
    emit(
      `organizationMembership.${type}`,
      {
        id: membershipIds.get(key),
        object: "organization_membership",
        role,
        permissions: [],
        public_metadata: {},
        private_metadata: {},
        organization: organizationData(organization),
        public_user_data: {
          user_id: user.id,
          identifier: user.email,
          first_name: user.firstName,
          last_name: user.lastName,
          image_url: `https://img.clerk.com/${user.id}`,
          has_image: false,
        },
        created_at: at,
        updated_at: at,
      },
      at,
    );
  };

  const [ada, grace, linus, barbara] = users as [SimUser, SimUser, SimUser, SimUser];
  const [acme, globex, initech] = organizations as [
    SimOrganization,
    SimOrganization,
    SimOrganization,
  ];
  membership("created", acme, ada, "org:admin", 0);
  membership("created", acme, grace, "org:member", 0);
  membership("created", acme, linus, "org:member", 0);
  membership("created", globex, grace, "org:admin", 0);
  membership("created", globex, barbara, "org:member", 0);
  membership("created", initech, linus, "org:admin", 0);

  // Updates: a rename (memberships after it embed the new name), a profile change, a promotion.
  acme.name = "Acme Corporation";
  acme.updatedAt = tick();
  emit("organization.updated", organizationData(acme), acme.updatedAt);
  grace.lastName = "Hopper";
  grace.email = `grace.hopper.${prefix}@example.test`;
  grace.updatedAt = tick();
  emit("user.updated", clerkUserData(grace), grace.updatedAt);
  membership("updated", acme, grace, "org:admin", 0);

  // Removal and re-invitation: a new membership id for the same pair.
  membership("deleted", globex, barbara, "org:member", 0);
  membership("created", globex, barbara, "org:admin", 1);

  // A removal for good, a user deletion and an organization deletion.
  membership("deleted", acme, linus, "org:member", 0);
  emit("user.deleted", { id: ada.id, object: "user", deleted: true }, tick());
  emit("organization.deleted", { id: initech.id, object: "organization", deleted: true }, tick());

  // Something we do not act on: recorded and acknowledged.
  emit("session.created", { id: `sess_${prefix}`, object: "session", user_id: grace.id }, tick());
  return events;
}

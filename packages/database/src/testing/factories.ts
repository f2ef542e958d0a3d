import { randomBytes, randomUUID } from "node:crypto";
import type { Db } from "../client";
import type {
  ApiKey,
  Bot,
  Meeting,
  Membership,
  Organization,
  Prisma,
  StorageObject,
  Subscription,
  User,
} from "../../generated/client";

let sequence = 0;

/** A value no other call in any process returns: a counter plus random bytes. */
export function uniqueSuffix(): string {
  sequence += 1;
  return `${sequence.toString(36)}${randomBytes(5).toString("hex")}`;
}

export async function createOrganization(
  db: Db,
  data: Partial<Prisma.OrganizationUncheckedCreateInput> = {},
): Promise<Organization> {
  const suffix = uniqueSuffix();
  return db.organization.create({
    data: { name: `Org ${suffix}`, clerkId: `org_${suffix}`, ...data },
  });
}

export async function createUser(
  db: Db,
  data: Partial<Prisma.UserUncheckedCreateInput> = {},
): Promise<User> {
  const suffix = uniqueSuffix();
  return db.user.create({
    data: { clerkId: `user_${suffix}`, email: `user-${suffix}@example.test`, ...data },
  });
}

export async function createMembership(
  db: Db,
  data: Pick<Prisma.MembershipUncheckedCreateInput, "organizationId" | "userId"> &
    Partial<Prisma.MembershipUncheckedCreateInput>,
): Promise<Membership> {
  return db.membership.create({ data: { role: "member", ...data } });
}

/** An organization with one admin member, the usual starting point of a test. */
export async function createOrganizationWithAdmin(
  db: Db,
  data: Partial<Prisma.OrganizationUncheckedCreateInput> = {},
): Promise<{ organization: Organization; user: User; membership: Membership }> {
  const organization = await createOrganization(db, data);
  const user = await createUser(db);
  const membership = await createMembership(db, {
    organizationId: organization.id,
    userId: user.id,
    role: "admin",
  });
  return { organization, user, membership };
}

export async function createMeeting(
  db: Db,
  data: Pick<Prisma.MeetingUncheckedCreateInput, "organizationId"> &
    Partial<Prisma.MeetingUncheckedCreateInput>,
): Promise<Meeting> {
  const meetingNumber = `${Date.now()}${Math.floor(Math.random() * 1e6)}`.slice(-11);
  const url = `https://zoom.us/j/${meetingNumber}`;
  return db.meeting.create({
    data: {
      title: `Meeting ${uniqueSuffix()}`,
      meetingUrl: url,
      normalizedMeetingUrl: `zoom:${meetingNumber}`,
      platform: "zoom",
      ...data,
    },
  });
}

export async function createBot(
  db: Db,
  meeting: Pick<Meeting, "id" | "organizationId" | "normalizedMeetingUrl">,
  data: Partial<Prisma.BotUncheckedCreateInput> = {},
): Promise<Bot> {
  return db.bot.create({
    data: {
      meetingId: meeting.id,
      organizationId: meeting.organizationId,
      normalizedMeetingUrl: meeting.normalizedMeetingUrl,
      recallBotId: randomUUID(),
      status: "joining_call",
      ...data,
    },
  });
}

export async function createStorageObject(
  db: Db,
  meeting: Pick<Meeting, "id" | "organizationId">,
  data: Partial<Prisma.StorageObjectUncheckedCreateInput> = {},
): Promise<StorageObject> {
  return db.storageObject.create({
    data: {
      meetingId: meeting.id,
      organizationId: meeting.organizationId,
      key: `test/${randomUUID()}`,
      contentType: "video/mp4",
      sizeBytes: 1024n,
      ...data,
    },
  });
}

export async function createSubscription(
  db: Db,
  data: Pick<Prisma.SubscriptionUncheckedCreateInput, "organizationId"> &
    Partial<Prisma.SubscriptionUncheckedCreateInput>,
): Promise<Subscription> {
  const suffix = uniqueSuffix();
  return db.subscription.create({
    data: {
      planSlug: "pro",
      stripeSubscriptionId: `sub_${suffix}`,
      stripeCustomerId: `cus_${suffix}`,
      status: "active",
      ...data,
    },
  });
}

/** Inserts an API key row with a given secret hash (the API's key service makes real keys). */
export async function createApiKeyRow(
  db: Db,
  data: Pick<Prisma.ApiKeyUncheckedCreateInput, "organizationId" | "secretHash"> &
    Partial<Prisma.ApiKeyUncheckedCreateInput>,
): Promise<ApiKey> {
  return db.apiKey.create({
    data: { name: `key ${uniqueSuffix()}`, prefix: uniqueSuffix(), scopes: [], ...data },
  });
}

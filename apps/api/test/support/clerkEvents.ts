import { uniqueSuffix } from "@zigznote/database/testing";
import type { Express } from "express";
import request from "supertest";
import { svixHeaders } from "./webhookSigning";

/**
 * Clerk's organization and membership events in Clerk's payload shapes, one at a time (the
 * scenario fixtures are in clerkFixtures.ts), and their delivery signed with the real `svix`
 * SDK, for tests that interleave webhooks with requests.
 */

export function clerkOrganizationData(
  organization: { id: string; name?: string },
  at: number,
): Record<string, unknown> {
  const name = organization.name ?? "Acme";
  return {
    id: organization.id,
    object: "organization",
    name,
    slug: name.toLowerCase().replace(/[^a-z0-9]+/g, "-"),
    image_url: `https://img.clerk.com/${organization.id}`,
    has_image: false,
    created_by: null,
    public_metadata: {},
    private_metadata: {},
    max_allowed_memberships: 5,
    admin_delete_enabled: true,
    created_at: at,
    updated_at: at,
  };
}

/** A membership as `organizationMembership.*` events carry it (`role`: `org:admin`, ...). */
export function clerkMembershipData(input: {
  id: string;
  organizationId: string;
  userId: string;
  role: string;
  /** Clerk's updated_at of the membership (and of its embedded organization). */
  at: number;
}): Record<string, unknown> {
  return {
    id: input.id,
    object: "organization_membership",
    role: input.role,
    permissions: [],
    public_metadata: {},
    private_metadata: {},
    organization: clerkOrganizationData({ id: input.organizationId }, input.at),
    public_user_data: {
      user_id: input.userId,
      identifier: `${input.userId}@example.test`,
      first_name: null,
      last_name: null,
      image_url: `https://img.clerk.com/${input.userId}`,
      has_image: false,
    },
    created_at: input.at,
    updated_at: input.at,
  };
}

/** Delivers one Clerk event to `app` as Svix would (a fresh message id unless given). */
export function deliverClerkEvent(
  app: Express,
  secret: string,
  event: { type: string; data: Record<string, unknown>; timestamp: number; msgId?: string },
): request.Test {
  const body = JSON.stringify({
    data: event.data,
    object: "event",
    type: event.type,
    timestamp: event.timestamp,
    instance_id: "ins_test",
  });
  return request(app)
    .post("/webhooks/clerk")
    .set(svixHeaders(secret, event.msgId ?? `msg_${uniqueSuffix()}`, body))
    .send(body);
}

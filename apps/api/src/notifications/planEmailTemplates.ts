import { z } from "zod";
import { billingButton, formatDate, isoDate, parse, planName, type Template } from "./emailContent";

/** The e-mails of plan-limit notices: a violation, its storage grace ending, its resolution. */

const violationType = z.enum(["meetings", "team_members", "storage"]);
const violationPayload = z.object({
  planSlug: z.string(),
  type: violationType,
  limit: z.number(),
  current: z.number(),
  action: z.enum(["read_only", "notify_admin", "grace_period"]),
  graceEndsAt: isoDate.optional(),
});
const storageGraceEndingPayload = z.object({
  planSlug: z.string(),
  limit: z.number(),
  current: z.number(),
  graceEndsAt: isoDate,
});
const violationResolvedPayload = z.object({ planSlug: z.string(), type: violationType });

const LIMIT_LABELS: Record<z.infer<typeof violationType>, string> = {
  meetings: "meetings per month",
  team_members: "team members",
  storage: "storage",
};

function formatUsage(type: z.infer<typeof violationType>, value: number): string {
  if (type !== "storage") return String(value);
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} bytes` : `${size.toFixed(1)} ${units[unit]}`;
}

/** The template of each plan-limit notice type. */
export const PLAN_EMAIL_TEMPLATES: Readonly<Record<string, Template>> = {
  "plan.violation": (payload, ctx) => {
    const p = parse("plan.violation", violationPayload, payload);
    const label = LIMIT_LABELS[p.type];
    const plan = planName(p.planSlug);
    const facts: [string, string][] = [
      ["Plan", plan],
      ["Limit", `${formatUsage(p.type, p.limit)} ${p.type === "storage" ? "" : label}`.trim()],
      ["Current usage", formatUsage(p.type, p.current)],
    ];
    if (p.action === "read_only") {
      return {
        subject: `${ctx.organizationName} is read-only: over the ${label} limit of the ${plan} plan`,
        preview: "New recordings and meetings are paused until usage is within the plan.",
        heading: "Your organization is read-only",
        blocks: [
          {
            kind: "paragraph",
            text: `${ctx.organizationName} uses more ${label} than the ${plan} plan allows, so it is read-only from now on: you can read and delete, but not add. Reduce usage or upgrade to lift it.`,
          },
          { kind: "facts", rows: facts },
          billingButton(ctx),
        ],
      };
    }
    if (p.action === "grace_period" && p.graceEndsAt) {
      const ends = formatDate(p.graceEndsAt);
      return {
        subject: `${ctx.organizationName} is over its storage limit: read-only from ${ends}`,
        preview: `Free some storage or upgrade before ${ends}.`,
        heading: "You are over your storage limit",
        blocks: [
          {
            kind: "paragraph",
            text: `${ctx.organizationName} stores more than the ${plan} plan allows. Delete recordings or upgrade before ${ends}; after that the organization becomes read-only.`,
          },
          { kind: "facts", rows: [...facts, ["Grace period ends", ends]] },
          billingButton(ctx),
        ],
      };
    }
    return {
      subject: `${ctx.organizationName} is over the ${label} limit of the ${plan} plan`,
      preview: "Remove members or upgrade to stay within your plan.",
      heading: `You are over your ${label} limit`,
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} has more ${label} than the ${plan} plan allows. Nothing is blocked, but please remove members or upgrade.`,
        },
        { kind: "facts", rows: facts },
        billingButton(ctx),
      ],
    };
  },

  "plan.storage_grace_ending": (payload, ctx) => {
    const p = parse("plan.storage_grace_ending", storageGraceEndingPayload, payload);
    const ends = formatDate(p.graceEndsAt);
    return {
      subject: `${ctx.organizationName} turns read-only in less than 24 hours`,
      preview: `Storage grace period ends ${ends}.`,
      heading: "Your storage grace period ends tomorrow",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} still stores more than the ${planName(p.planSlug)} plan allows. On ${ends} it becomes read-only unless you free space or upgrade.`,
        },
        {
          kind: "facts",
          rows: [
            ["Limit", formatUsage("storage", p.limit)],
            ["Current usage", formatUsage("storage", p.current)],
            ["Read-only from", ends],
          ],
        },
        billingButton(ctx),
      ],
    };
  },

  "plan.violation_resolved": (payload, ctx) => {
    const p = parse("plan.violation_resolved", violationResolvedPayload, payload);
    const label = LIMIT_LABELS[p.type];
    return {
      subject: `${ctx.organizationName} is back within the ${label} limit`,
      preview: "Nothing more to do.",
      heading: "Back within your plan",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} is within the ${label} limit of the ${planName(p.planSlug)} plan again. Any restriction it caused is lifted.`,
        },
        { kind: "button", label: "Open zigznote", url: ctx.appUrl },
      ],
    };
  },
};

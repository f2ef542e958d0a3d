/**
 * `pnpm --filter @zigznote/api email:preview [folder]`: renders every e-mail template (and each
 * variant) with sample data, as the outbox sends it, into `folder` (default
 * `.data/email-preview`): `<name>.html` to open in a browser, `<name>.txt` for the text part,
 * and `index.html` linking them with their subjects. Links point under APP_URL.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadConfigOrReport } from "../config";
import { EMAIL_SAMPLES, escapeHtml, renderNoticeEmail } from "../notifications";

/** A name that shows the escaping at work. */
const SAMPLE_ORGANIZATION = `Acme <Research> & "Partners"`;

async function main(): Promise<number> {
  const config = loadConfigOrReport();
  if (!config) return 1;
  const folder = path.resolve(process.argv[2] ?? ".data/email-preview");
  mkdirSync(folder, { recursive: true });
  const index: string[] = [];
  for (const sample of EMAIL_SAMPLES) {
    const email = await renderNoticeEmail(
      { type: sample.type, payload: sample.payload, organizationName: SAMPLE_ORGANIZATION },
      config.APP_URL,
    );
    writeFileSync(path.join(folder, `${sample.name}.html`), email.html);
    writeFileSync(
      path.join(folder, `${sample.name}.txt`),
      `Subject: ${email.subject}\n\n${email.text}`,
    );
    index.push(
      `<li><a href="${sample.name}.html">${escapeHtml(sample.name)}</a> (<a href="${sample.name}.txt">text</a>): ${escapeHtml(email.subject)}</li>`,
    );
  }
  writeFileSync(
    path.join(folder, "index.html"),
    `<!doctype html><meta charset="utf-8"><title>zigznote e-mails</title><ul>\n${index.join("\n")}\n</ul>\n`,
  );
  console.log(`wrote ${EMAIL_SAMPLES.length} templates (.html and .txt) to ${folder}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

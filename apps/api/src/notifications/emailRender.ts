import mjml2html from "mjml";
import type { EmailBlock, EmailContent } from "./emailContent";

/**
 * Turns a template's content into the two parts of one e-mail: HTML through MJML (responsive,
 * inlined styles that mail clients keep) and plain text, from the same blocks. This is the only
 * place values enter markup, and every one goes through `escapeHtml` (text and attributes alike);
 * links must be http(s).
 */

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes a value for HTML text and double- or single-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]!);
}

/**
 * Bidirectional controls (LRE..RLO, LRI..PDI, LRM, RLM, ALM): a name carrying U+202E would
 * reverse the text after it in the reader's client (spoofing the amount or a link), so they are
 * removed from every value; letters of right-to-left scripts are untouched.
 */
const BIDI_CONTROLS = /[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/g;

/** The value without bidirectional control characters. */
export function stripBidiControls(value: string): string {
  return value.replace(BIDI_CONTROLS, "");
}

const DEFAULT_FOOTER = "You receive this because you administer this organization or pay for it.";

function cleanContent(content: EmailContent): EmailContent & { footer: string } {
  const clean = stripBidiControls;
  return {
    footer: clean(content.footer ?? DEFAULT_FOOTER),
    subject: clean(content.subject),
    preview: clean(content.preview),
    heading: clean(content.heading),
    blocks: content.blocks.map((block): EmailBlock => {
      switch (block.kind) {
        case "paragraph":
          return { kind: "paragraph", text: clean(block.text) };
        case "facts":
          return {
            kind: "facts",
            rows: block.rows.map(([label, value]) => [clean(label), clean(value)]),
          };
        case "button":
          return { kind: "button", label: clean(block.label), url: block.url };
      }
    }),
  };
}

/** A subject line without control characters (headers are one line). */
function cleanSubject(subject: string): string {
  // eslint-disable-next-line no-control-regex
  return subject.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

function safeUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new Error(`refusing a ${parsed.protocol} link in an e-mail`);
  }
  return parsed.toString();
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function blockToMjml(block: EmailBlock): string {
  switch (block.kind) {
    case "paragraph":
      return `<mj-text ${FONT} font-size="15px" line-height="22px" color="#1f2933">${escapeHtml(block.text)}</mj-text>`;
    case "facts":
      return `<mj-table ${FONT} font-size="14px" color="#1f2933" cellpadding="4px">${block.rows
        .map(
          ([label, value]) =>
            `<tr><td style="color:#52606d;padding-right:16px">${escapeHtml(label)}</td><td><strong>${escapeHtml(value)}</strong></td></tr>`,
        )
        .join("")}</mj-table>`;
    case "button":
      return `<mj-button ${FONT} href="${escapeHtml(safeUrl(block.url))}" background-color="#3b5bdb" color="#ffffff" font-size="15px" align="left">${escapeHtml(block.label)}</mj-button>`;
  }
}

function blockToText(block: EmailBlock): string {
  switch (block.kind) {
    case "paragraph":
      return block.text;
    case "facts":
      return block.rows.map(([label, value]) => `${label}: ${value}`).join("\n");
    case "button":
      return `${block.label}: ${safeUrl(block.url)}`;
  }
}

/** Renders content as an e-mail's subject, HTML and text parts. */
export async function renderEmail(raw: EmailContent): Promise<RenderedEmail> {
  const content = cleanContent(raw);
  const source = `<mjml>
  <mj-head>
    <mj-title>${escapeHtml(content.subject)}</mj-title>
    <mj-preview>${escapeHtml(content.preview)}</mj-preview>
  </mj-head>
  <mj-body background-color="#f5f7fa">
    <mj-section>
      <mj-column>
        <mj-text ${FONT} font-size="13px" color="#52606d">zigznote</mj-text>
        <mj-text ${FONT} font-size="22px" font-weight="bold" color="#1f2933">${escapeHtml(content.heading)}</mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff">
      <mj-column>
        ${content.blocks.map(blockToMjml).join("\n        ")}
      </mj-column>
    </mj-section>
    <mj-section>
      <mj-column>
        <mj-text ${FONT} font-size="12px" color="#7b8794">${escapeHtml(content.footer)}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>`;
  const result = await mjml2html(source, { validationLevel: "strict", minify: false });
  const text = [
    content.heading,
    "",
    ...content.blocks.map(blockToText).flatMap((part) => [part, ""]),
    "--",
    `zigznote. ${content.footer}`,
  ].join("\n");
  return { subject: cleanSubject(content.subject), html: result.html, text };
}

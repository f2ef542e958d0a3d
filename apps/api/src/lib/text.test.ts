import fc from "fast-check";
import {
  findUnstorableText,
  formatTextPath,
  isStorableText,
  storableExcerpt,
  toStorableString,
  toStorableText,
} from "./text";

describe("lib/text", () => {
  it.each([
    ["plain", true],
    ["emoji \u{1F600} and accents é", true],
    ["a\u0000b", false],
    ["high \uD83D alone", false],
    ["low \uDE00 alone", false],
    ["reversed \uDE00\uD83D", false],
    ["\uFFFD replacement", true],
  ])("isStorableText(%j) is %s", (value, expected) => {
    expect(isStorableText(value)).toBe(expected);
  });

  it("finds every unstorable value and key with its path", () => {
    expect(
      findUnstorableText({
        title: "a\u0000b",
        items: [{ name: "ok" }, { name: "\uD800" }],
        "bad\u0000key": 1,
        buffer: Buffer.from([0]),
      }),
    ).toEqual([
      { path: ["title"], isKey: false, reason: "nul" },
      { path: ["items", 1, "name"], isKey: false, reason: "lone_surrogate" },
      { path: ["bad\u0000key"], isKey: true, reason: "nul" },
    ]);
  });

  it("walks deeply nested values without exhausting the stack", () => {
    let value: unknown = "\u0000";
    for (let depth = 0; depth < 100_000; depth += 1) value = [value];
    expect(findUnstorableText(value)).toHaveLength(1);
  });

  it("reports a bounded number of issues", () => {
    expect(findUnstorableText(Array.from({ length: 1000 }, () => "\u0000"))).toHaveLength(20);
  });

  it("replaces each unstorable unit with U+FFFD, keys included, and keeps clean values as they are", () => {
    expect(toStorableString("a\u0000b\uD800c\uD83D\uDE00")).toBe("a\uFFFDb\uFFFDc\uD83D\uDE00");
    expect(toStorableText({ "k\u0000": ["x\u0000", 1, null, { y: "\uDC00" }] })).toEqual({
      "k\uFFFD": ["x\uFFFD", 1, null, { y: "\uFFFD" }],
    });
    const clean = { a: ["b", 1] };
    expect(toStorableText(clean)).toBe(clean);
  });

  it("makes any JSON value storable and changes nothing that already was", () => {
    const anyString = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), anyString, (json, text) => {
        const value = { json, [text]: text };
        const storable = toStorableText(value);
        expect(findUnstorableText(storable)).toEqual([]);
        expect(toStorableText(storable)).toBe(storable);
        if (findUnstorableText(value).length === 0) expect(storable).toBe(value);
      }),
    );
  });

  it("formats paths with unstorable characters escaped", () => {
    expect(formatTextPath([])).toBe("(root)");
    expect(formatTextPath(["items", 0, "na\u0000me\uD800"])).toBe("items.0.na\\u0000me\\ud800");
  });

  it("cuts an excerpt to its length and makes it storable, a pair cut in half included", () => {
    expect(storableExcerpt("abc", 2)).toBe("ab");
    expect(storableExcerpt("a\u0000b", 10)).toBe("a\uFFFDb");
    expect(storableExcerpt("a\u{1F600}", 2)).toBe("a\uFFFD");
    expect(storableExcerpt("a\u{1F600}", 3)).toBe("a\u{1F600}");
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.nat(40), (text, length) => {
        const excerpt = storableExcerpt(text, length);
        return excerpt.length <= length && isStorableText(excerpt);
      }),
    );
  });
});

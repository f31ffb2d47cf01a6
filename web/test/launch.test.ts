import { describe, expect, it } from "vitest";
import { fmtLaunch } from "../src/format";

describe("fmtLaunch", () => {
  it("says how long a launch took and whether a warm slot served it", () => {
    expect(fmtLaunch(84, true)).toBe("84 ms · warm");
    expect(fmtLaunch(1640, false)).toBe("1.6 s · cold");
    expect(fmtLaunch(900, null)).toBe("900 ms · cold");
  });

  it("is empty for sessions recorded before launch times were kept", () => {
    expect(fmtLaunch(null, null)).toBe("");
    expect(fmtLaunch(undefined, true)).toBe("");
  });
});

// @vitest-environment happy-dom
// The config card's Network section and the credentials prompt's warning.
import { h, render, type ComponentChild } from "preact";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialsDialog } from "../src/components/CredentialsDialog";
import { EgressView } from "../src/pages/launch/ConfigCard";

afterEach(() => {
  document.body.innerHTML = "";
});

function mount(node: ComponentChild): HTMLElement {
  const root = document.createElement("div");
  document.body.appendChild(root);
  render(node, root);
  return root;
}

describe("EgressView", () => {
  it("names the policy and lists an allowlist's hosts", () => {
    const el = mount(h(EgressView, { egress: { policy: "allowlist", domains: ["api.github.com", "*.pypi.org"] } }));
    const section = el.querySelector('[data-testid="config-egress"]')!;
    expect(section.getAttribute("data-policy")).toBe("allowlist");
    expect(section.textContent).toContain("these hosts");
    expect([...section.querySelectorAll(".chip")].map((c) => c.textContent)).toEqual(["api.github.com", "*.pypi.org"]);
  });

  it("defaults to the model only, and says what open means", () => {
    expect(mount(h(EgressView, { egress: undefined })).textContent).toContain("Only the model");
    const open = mount(h(EgressView, { egress: { policy: "open", domains: [] } }));
    expect(open.textContent).toContain("never private addresses");
    expect(open.querySelectorAll(".chip")).toHaveLength(0);
  });
});

describe("CredentialsDialog", () => {
  it("warns that stdio MCP credentials are visible to the agent", () => {
    mount(h(CredentialsDialog, { creds: { github: ["GITHUB_TOKEN"] }, configName: "GitHub", onCancel: () => {}, onSubmit: () => {} }));
    const warning = document.querySelector('[data-testid="mcp-credentials-visible"]')!;
    expect(warning.textContent).toContain("the agent can read these values");
  });
});

// @vitest-environment happy-dom
// The two secret fields share one component: each writes its own store, masked until shown.
import { h, render, type ComponentChild } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { ApiKeyField, OperatorTokenField } from "../src/components/SecretField";
import { getApiKey, getOperatorToken } from "../src/store";

afterEach(() => {
  render(null, document.body);
  document.body.innerHTML = "";
  localStorage.clear();
  sessionStorage.clear();
});

async function mount(node: ComponentChild): Promise<HTMLElement> {
  const root = document.createElement("div");
  document.body.appendChild(root);
  await act(() => render(node, root));
  return root;
}

async function type(input: HTMLInputElement, value: string) {
  await act(() => {
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
}

describe("ApiKeyField", () => {
  it("keeps the key in localStorage, masked until shown, and forgets it", async () => {
    const el = await mount(h(ApiKeyField, { compact: false }));
    const input = el.querySelector<HTMLInputElement>('[data-testid="api-key-input"]')!;
    expect(input.type).toBe("password");
    expect(el.querySelector('[data-testid="forget-api-key"]')).toBeNull();

    await type(input, " sk-ant-abc ");
    expect(getApiKey()).toBe("sk-ant-abc");
    expect(localStorage.getItem("agc.apiKey")).toBe("sk-ant-abc");
    expect(sessionStorage.length).toBe(0);
    expect(el.textContent).toContain("Kept only in this browser");

    await act(() => el.querySelector<HTMLButtonElement>(".icon-btn")!.click());
    expect(input.type).toBe("text");

    await act(() => el.querySelector<HTMLButtonElement>('[data-testid="forget-api-key"]')!.click());
    expect(getApiKey()).toBe("");
    expect(input.value).toBe("");
    expect(el.querySelector('[data-testid="forget-api-key"]')).toBeNull();
  });

  it("drops the help text when compact", async () => {
    const el = await mount(h(ApiKeyField, { compact: true }));
    expect(el.querySelector(".keybox.compact")).not.toBeNull();
    expect(el.querySelector(".field-help")).toBeNull();
  });
});

describe("OperatorTokenField", () => {
  it("keeps the token in this tab only and offers no Forget", async () => {
    const el = await mount(h(OperatorTokenField, {}));
    const input = el.querySelector<HTMLInputElement>('[data-testid="operator-token-input"]')!;
    expect(input.type).toBe("password");
    await type(input, "op-123");
    expect(getOperatorToken()).toBe("op-123");
    expect(sessionStorage.getItem("agc.operatorToken")).toBe("op-123");
    expect(localStorage.length).toBe(0);
    expect(input.value).toBe("op-123");
    expect(el.querySelector('[data-testid^="forget-"]')).toBeNull();
    expect(el.textContent).toContain("AGC_OPERATOR_TOKEN");
  });

  it("starts from the token already kept in this tab", async () => {
    sessionStorage.setItem("agc.operatorToken", "kept");
    const el = await mount(h(OperatorTokenField, {}));
    expect(el.querySelector<HTMLInputElement>("input")!.value).toBe("kept");
  });
});

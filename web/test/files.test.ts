import { describe, expect, it } from "vitest";
import { changedFiles, flatten, folderPaths, sortNodes, withParents } from "../src/components/files/tree";
import { isActive, runPool, type UploadRow } from "../src/components/files/useUploads";
import type { FileNode } from "../src/types";

const file = (path: string, size = 1, modified = 1): FileNode => ({ name: path.split("/").pop()!, path, type: "file", size, modified });
const dir = (path: string, children: FileNode[]): FileNode => ({ name: path.split("/").pop()!, path, type: "directory", children });

describe("tree helpers", () => {
  const before = dir("", [dir("src", [file("src/a.py"), file("src/b.py")]), file("README.md")]);

  it("list new and changed files, not folders or unchanged files", () => {
    const after = dir("", [dir("src", [file("src/a.py", 2), file("src/b.py"), dir("src/new", [file("src/new/c.py")])]), file("README.md")]);
    expect([...changedFiles(flatten(before), flatten(after))].sort()).toEqual(["src/a.py", "src/new/c.py"]);
    expect(changedFiles(flatten(before), flatten(before)).size).toBe(0);
  });

  it("open every folder above a path, keeping what was open", () => {
    expect([...withParents(new Set(["", "docs"]), ["src/new/c.py", "top.txt"])].sort()).toEqual(["", "docs", "src", "src/new"]);
  });

  it("sort folders first, then by name; list folders for upload targets", () => {
    expect(sortNodes(before.children!).map((n) => n.name)).toEqual(["src", "README.md"]);
    expect(folderPaths(dir("", [dir("z", []), dir("a", [dir("a/b", [])])]))).toEqual(["a", "a/b", "z"]);
    expect(folderPaths(null)).toEqual([]);
  });
});

describe("uploads", () => {
  it("run at most n at a time, every item once", async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await runPool([1, 2, 3, 4, 5], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1));
      done.push(n);
      running--;
    });
    expect(peak).toBe(2);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5]);
    await runPool([], 2, async () => {
      throw new Error("never called");
    });
  });

  it("are active while one is queued or uploading", () => {
    const row = (status: UploadRow["status"]) => ({ status }) as UploadRow;
    expect(isActive([row("done"), row("queued")])).toBe(true);
    expect(isActive([row("done"), row("conflict"), row("skipped")])).toBe(false);
  });
});

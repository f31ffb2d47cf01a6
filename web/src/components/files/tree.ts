// Pure helpers over the workspace's file tree (unit-tested in web/test/files.test.ts).
import type { FileNode } from "../../types";

/** What changes when a file changes: its modification time or size. */
export function modifiedKey(n: FileNode): string {
  return `${n.modified ?? ""}:${n.size ?? ""}`;
}

/** Every node by path. */
export function flatten(n: FileNode, out: Map<string, FileNode> = new Map()): Map<string, FileNode> {
  out.set(n.path, n);
  n.children?.forEach((c) => flatten(c, out));
  return out;
}

/** Folders first, then by name. */
export function sortNodes(nodes: FileNode[]): FileNode[] {
  return [...nodes].sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === "directory" ? -1 : 1));
}

/** Files that are new or changed since the previous tree. */
export function changedFiles(prev: Map<string, FileNode>, next: Map<string, FileNode>): Set<string> {
  const changed = new Set<string>();
  next.forEach((n, p) => {
    const o = prev.get(p);
    if (n.type === "file" && (!o || modifiedKey(o) !== modifiedKey(n))) changed.add(p);
  });
  return changed;
}

/** `expanded` plus every folder above the given paths (to reveal them). */
export function withParents(expanded: Set<string>, paths: Iterable<string>): Set<string> {
  const next = new Set(expanded);
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) next.add(parts.slice(0, i).join("/"));
  }
  return next;
}

/** Every folder's path (the root excluded), sorted: the upload targets. */
export function folderPaths(root: FileNode | null): string[] {
  const out: string[] = [];
  if (root) flatten(root).forEach((n) => n.type === "directory" && n.path && out.push(n.path));
  return out.sort();
}

export function isImageName(name: string): boolean {
  return /\.(png|jpe?g|gif|webp|svg|bmp|ico)$/i.test(name);
}

// One row of the workspace tree (a folder renders its children); folders take dropped files.
import { useState } from "preact/hooks";
import { fmtBytes } from "../../format";
import type { FileNode } from "../../types";
import { Icon } from "../Icon";
import { isImageName, sortNodes } from "./tree";

export function TreeNode({
  node,
  depth,
  expanded,
  toggle,
  selectedFile,
  targetDir,
  fresh,
  onOpen,
  onPickDir,
  onDropFiles,
}: {
  node: FileNode;
  depth: number;
  expanded: Set<string>;
  toggle: (p: string) => void;
  selectedFile: string | null;
  targetDir: string;
  fresh: Set<string>;
  onOpen: (p: string) => void;
  onPickDir: (p: string) => void;
  onDropFiles: (files: File[], dir: string) => void;
}) {
  const isDir = node.type === "directory";
  const open = expanded.has(node.path);
  const [over, setOver] = useState(false);
  const cls = [
    "tree-row",
    isDir ? "dir" : "file",
    selectedFile === node.path ? "selected" : "",
    isDir && targetDir === node.path ? "target" : "",
    fresh.has(node.path) ? "fresh" : "",
    over ? "drop-over" : "",
  ].join(" ");
  return (
    <li role="treeitem" aria-expanded={isDir ? open : undefined}>
      <button
        class={cls}
        style={{ paddingLeft: `${8 + depth * 14}px` }}
        data-testid="file-node"
        data-path={node.path}
        data-type={node.type}
        title={node.path}
        onClick={() => {
          if (isDir) {
            toggle(node.path);
            onPickDir(node.path);
          } else onOpen(node.path);
        }}
        onDragOver={
          isDir
            ? (e) => {
                e.preventDefault();
                e.stopPropagation();
                setOver(true);
              }
            : undefined
        }
        onDragLeave={isDir ? () => setOver(false) : undefined}
        onDrop={
          isDir
            ? (e) => {
                e.preventDefault();
                e.stopPropagation();
                setOver(false);
                const files = Array.from(e.dataTransfer?.files ?? []);
                if (files.length) onDropFiles(files, node.path);
              }
            : undefined
        }
      >
        {isDir ? <Icon name={open ? "chevronDown" : "chevron"} size={12} class="tree-caret" /> : <span class="tree-caret" />}
        <Icon name={isDir ? (open ? "folderOpen" : "folder") : isImageName(node.name) ? "image" : "file"} size={14} class={isDir ? "dir-icon" : "file-icon"} />
        <span class="tree-name">{node.name}</span>
        {!isDir && <span class="tree-size">{fmtBytes(node.size)}</span>}
      </button>
      {isDir && open && node.children && node.children.length > 0 && (
        <ul role="group">
          {sortNodes(node.children).map((c) => (
            <TreeNode
              key={c.path}
              node={c}
              depth={depth + 1}
              expanded={expanded}
              toggle={toggle}
              selectedFile={selectedFile}
              targetDir={targetDir}
              fresh={fresh}
              onOpen={onOpen}
              onPickDir={onPickDir}
              onDropFiles={onDropFiles}
            />
          ))}
        </ul>
      )}
    </li>
  );
}

// Workspace files: live tree, preview, downloads, drag-and-drop uploads with per-file progress.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, saveBlob, uploadFile } from "../api";
import { humanize, type HumanError } from "../errors";
import { basename, fmtBytes } from "../format";
import { languageForPath } from "../lang";
import type { FileNode, FilePreview, FileTree } from "../types";
import { Code } from "./Code";
import { Icon, Spinner } from "./Icon";
import { ErrorBanner, Modal, toast } from "./ui";

const lineCount = (n: number) => `${n} line${n === 1 ? "" : "s"}`;

function modifiedKey(n: FileNode): string {
  return `${n.modified ?? ""}:${n.size ?? ""}`;
}

function flatten(n: FileNode, out: Map<string, FileNode> = new Map()): Map<string, FileNode> {
  out.set(n.path, n);
  n.children?.forEach((c) => flatten(c, out));
  return out;
}

function sortNodes(nodes: FileNode[]): FileNode[] {
  return [...nodes].sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === "directory" ? -1 : 1));
}

interface UploadRow {
  id: number;
  file: File;
  target: string;
  progress: number;
  status: "queued" | "uploading" | "done" | "conflict" | "error" | "skipped";
  error?: string;
}

let uploadSeq = 0;

function TreeNode({
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
        <Icon name={isDir ? (open ? "folderOpen" : "folder") : /\.(png|jpe?g|gif|webp|svg|bmp|ico)$/i.test(node.name) ? "image" : "file"} size={14} class={isDir ? "dir-icon" : "file-icon"} />
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

export function FilePreviewPane({
  sid,
  apiKey,
  path,
  version,
  onClose,
}: {
  sid: string;
  apiKey: string;
  path: string;
  version: string;
  onClose: () => void;
}) {
  const [preview, setPreview] = useState<FilePreview | null>(null);
  const [err, setErr] = useState<HumanError | null>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    let cancelled = false;
    let url: string | null = null;
    setLoading(true);
    api
      .preview(apiKey, sid, path)
      .then((p) => {
        if (p.type === "image") url = p.url;
        if (cancelled) {
          if (url) URL.revokeObjectURL(url);
          return;
        }
        setPreview(p);
        setErr(null);
      })
      .catch((e) => !cancelled && setErr(humanize(e, "preview")))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [sid, path, version, apiKey]);

  const download = async () => {
    try {
      saveBlob(await api.downloadFile(apiKey, sid, path), basename(path));
    } catch (e) {
      setErr(humanize(e, "download"));
    }
  };

  return (
    <div class="preview" data-testid="file-preview" data-path={path}>
      <div class="preview-head">
        <Icon name={preview?.type === "image" ? "image" : "file"} size={15} />
        <span class="preview-path mono" title={path}>
          {path}
        </span>
        {preview?.type === "text" && (
          <span class="muted small">
            {preview.language ?? languageForPath(path) ?? "text"} · {lineCount(preview.lines ?? preview.content.split("\n").length)} · {fmtBytes(preview.size)}
          </span>
        )}
        {loading && <Spinner />}
        <span class="spacer" />
        <button class="btn sm" onClick={download} data-testid="download-file">
          <Icon name="download" size={13} /> Download
        </button>
        <button class="icon-btn" onClick={onClose} aria-label="Close preview" data-testid="preview-close">
          <Icon name="x" />
        </button>
      </div>
      <ErrorBanner error={err} onDismiss={() => setErr(null)} />
      <div class="preview-body">
        {preview?.type === "text" && (
          <>
            {preview.truncated && <div class="banner banner-warn small">Large file: showing the beginning only. Download it for the whole content.</div>}
            <Code code={preview.content} lang={languageForPath(path, preview.language)} lineNumbers testid="preview-code" />
          </>
        )}
        {preview?.type === "image" && (
          <div class="preview-image">
            <img
              src={preview.url}
              alt={path}
              data-testid="preview-image"
              onLoad={(e) => {
                // Tiny images (icons, sprites) are scaled up crisply.
                const img = e.currentTarget as HTMLImageElement;
                if (img.naturalWidth && img.naturalWidth < 64) {
                  img.style.width = `${img.naturalWidth * 8}px`;
                  img.style.imageRendering = "pixelated";
                }
              }}
            />
            <div class="muted small">
              {preview.mime} · {fmtBytes(preview.size)}
            </div>
          </div>
        )}
        {preview?.type === "binary" && (
          <div class="empty">
            <Icon name="file" size={28} />
            <div class="empty-title">Binary file</div>
            <div class="empty-body">
              {preview.mime ?? "unknown type"} · {fmtBytes(preview.size)}
            </div>
            <button class="btn primary" onClick={download}>
              <Icon name="download" size={13} /> Download
            </button>
          </div>
        )}
      </div>
    </div>
  );
}

export function FilesPanel({
  sid,
  apiKey,
  live,
  refreshSignal,
  openPath,
  onOpen,
  onTree,
}: {
  sid: string;
  apiKey: string;
  /** Poll every ~2 s while true (a turn is running). */
  live: boolean;
  /** Bump to refresh once (e.g. when a turn completes). */
  refreshSignal: number;
  openPath: string | null;
  onOpen: (p: string) => void;
  onTree?: (t: FileTree) => void;
}) {
  const [tree, setTree] = useState<FileTree | null>(null);
  const [err, setErr] = useState<HumanError | null>(null);
  const [loading, setLoading] = useState(false);
  const [expanded, setExpanded] = useState<Set<string>>(new Set([""]));
  const [targetDir, setTargetDir] = useState("");
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [uploads, setUploads] = useState<UploadRow[]>([]);
  const [conflicts, setConflicts] = useState<UploadRow[] | null>(null);
  const [dragging, setDragging] = useState(false);
  const [zipping, setZipping] = useState(false);
  const prevIndex = useRef<Map<string, FileNode> | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const inflight = useRef(false);

  const load = async () => {
    if (inflight.current) return;
    inflight.current = true;
    setLoading(true);
    try {
      const t = await api.files(apiKey, sid);
      const idx = flatten(t.root);
      const prev = prevIndex.current;
      if (prev) {
        const changed = new Set<string>();
        idx.forEach((n, p) => {
          const o = prev.get(p);
          if (n.type === "file" && (!o || modifiedKey(o) !== modifiedKey(n))) changed.add(p);
        });
        if (changed.size) {
          setFresh(changed);
          // Reveal new files' folders.
          setExpanded((old) => {
            const next = new Set(old);
            changed.forEach((p) => {
              const parts = p.split("/");
              for (let i = 1; i < parts.length; i++) next.add(parts.slice(0, i).join("/"));
            });
            return next;
          });
        }
      }
      prevIndex.current = idx;
      setTree(t);
      onTree?.(t);
      setErr(null);
    } catch (e) {
      setErr(humanize(e, "files"));
    } finally {
      inflight.current = false;
      setLoading(false);
    }
  };

  useEffect(() => {
    void load();
  }, [sid, apiKey, refreshSignal]);

  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => void load(), 2000);
    return () => clearInterval(t);
  }, [live, sid, apiKey]);

  useEffect(() => {
    if (!fresh.size) return;
    const t = setTimeout(() => setFresh(new Set()), 4000);
    return () => clearTimeout(t);
  }, [fresh]);

  const dirs = useMemo(() => {
    const out: string[] = [];
    if (tree) flatten(tree.root).forEach((n) => n.type === "directory" && n.path && out.push(n.path));
    return out.sort();
  }, [tree]);

  const toggle = (p: string) =>
    setExpanded((old) => {
      const n = new Set(old);
      if (n.has(p)) n.delete(p);
      else n.add(p);
      return n;
    });

  const patch = (id: number, p: Partial<UploadRow>) => setUploads((rows) => rows.map((r) => (r.id === id ? { ...r, ...p } : r)));

  const runUploads = async (rows: UploadRow[], overwrite: boolean) => {
    const conflicted: UploadRow[] = [];
    const queue = [...rows];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const row = r;
        patch(row.id, { status: "uploading", progress: 0, error: undefined });
        try {
          await uploadFile(apiKey, sid, row.file, row.target, overwrite, (p) =>
            patch(row.id, { progress: p.total ? p.loaded / p.total : 0 }),
          ).promise;
          patch(row.id, { status: "done", progress: 1 });
        } catch (e) {
          if (e instanceof ApiError && e.status === 409) {
            conflicted.push(row);
            patch(row.id, { status: "conflict", progress: 0 });
          } else {
            const h = humanize(e, "upload");
            patch(row.id, { status: "error", error: `${h.title}${h.detail ? `: ${h.detail}` : ""}` });
          }
        }
      }
    };
    await Promise.all([worker(), worker()]);
    void load();
    if (conflicted.length) setConflicts(conflicted);
    else if (rows.length) toast(`Uploaded ${rows.length} file${rows.length === 1 ? "" : "s"}`);
  };

  const startUpload = (files: File[], dir: string) => {
    if (!files.length) return;
    const rows: UploadRow[] = files.map((f) => ({ id: ++uploadSeq, file: f, target: dir, progress: 0, status: "queued" }));
    setUploads((old) => [...old.filter((r) => r.status === "uploading" || r.status === "queued"), ...rows]);
    void runUploads(rows, false);
  };

  const downloadZip = async () => {
    setZipping(true);
    try {
      saveBlob(await api.downloadZip(apiKey, sid), `${sid}-workspace.zip`);
    } catch (e) {
      setErr(humanize(e, "download"));
    } finally {
      setZipping(false);
    }
  };

  const active = uploads.some((u) => u.status === "uploading" || u.status === "queued");

  return (
    <section
      class={`panel files-panel ${dragging ? "dragging" : ""}`}
      data-testid="files-panel"
      onDragEnter={(e) => {
        if (e.dataTransfer?.types?.includes("Files")) setDragging(true);
      }}
      onDragOver={(e) => {
        if (e.dataTransfer?.types?.includes("Files")) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(e) => {
        if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node)) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const files = Array.from(e.dataTransfer?.files ?? []);
        startUpload(files, targetDir);
      }}
    >
      <div class="panel-head static">
        <Icon name="folder" size={14} />
        <span class="panel-title">Workspace</span>
        {tree && (
          <span class="muted small">
            {tree.total_files ?? 0} files · {fmtBytes(tree.total_size)}
          </span>
        )}
        <span class="spacer" />
        {(loading || live) && <span class={`live-dot ${live ? "on" : ""}`} title={live ? "Refreshing every 2 s while the agent works" : "Loading"} />}
        <button class="icon-btn" title="Refresh" onClick={() => void load()} data-testid="files-refresh">
          <Icon name="refresh" size={14} />
        </button>
        <button class="icon-btn" title="Download the workspace as ZIP" onClick={downloadZip} disabled={zipping} data-testid="download-zip">
          {zipping ? <Spinner size={13} /> : <Icon name="archive" size={14} />}
        </button>
      </div>
      <div class="upload-bar">
        <label class="upload-target">
          <span class="muted small">Upload to</span>
          <select class="input sm mono" value={targetDir} onChange={(e) => setTargetDir((e.target as HTMLSelectElement).value)} data-testid="upload-target">
            <option value="">/ (workspace)</option>
            {dirs.map((d) => (
              <option key={d} value={d}>
                /{d}
              </option>
            ))}
          </select>
        </label>
        <button class="btn sm" onClick={() => inputRef.current?.click()} data-testid="upload-button">
          <Icon name="upload" size={13} /> Upload
        </button>
        <input
          ref={inputRef}
          type="file"
          multiple
          hidden
          data-testid="upload-input"
          onChange={(e) => {
            const el = e.target as HTMLInputElement;
            startUpload(Array.from(el.files ?? []), targetDir);
            el.value = "";
          }}
        />
      </div>
      <ErrorBanner error={err} onDismiss={() => setErr(null)}>
        <button class="btn sm" onClick={() => void load()}>
          Retry
        </button>
      </ErrorBanner>
      {uploads.length > 0 && (
        <div class="uploads" data-testid="uploads">
          {uploads.map((u) => (
            <div class={`upload-item up-${u.status}`} key={u.id} data-testid="upload-item" data-status={u.status} data-name={u.file.name}>
              <div class="upload-line">
                <span class="upload-name mono" title={`${u.target ? `/${u.target}/` : "/"}${u.file.name}`}>
                  {u.file.name}
                </span>
                <span class="muted small">{fmtBytes(u.file.size)}</span>
                <span class="upload-status small">
                  {u.status === "done" ? (
                    <Icon name="check" size={12} class="ok-text" />
                  ) : u.status === "error" ? (
                    <span class="err-text">failed</span>
                  ) : u.status === "conflict" ? (
                    <span class="warn-text">exists</span>
                  ) : u.status === "skipped" ? (
                    <span class="muted">skipped</span>
                  ) : (
                    `${Math.round(u.progress * 100)}%`
                  )}
                </span>
              </div>
              <div class="progress" role="progressbar" aria-valuenow={Math.round(u.progress * 100)} aria-valuemin={0} aria-valuemax={100}>
                <div class="progress-fill" style={{ width: `${u.progress * 100}%` }} />
              </div>
              {u.error && <div class="err-text small">{u.error}</div>}
            </div>
          ))}
          {!active && (
            <button class="link-btn small" onClick={() => setUploads([])}>
              Clear
            </button>
          )}
        </div>
      )}
      <div class="tree" role="tree" data-testid="file-tree">
        {!tree && !err && (
          <div class="muted small pad">
            <Spinner /> Loading files…
          </div>
        )}
        {tree && (!tree.root.children || tree.root.children.length === 0) && (
          <div class="empty small">
            <Icon name="folder" size={24} />
            <div>The workspace is empty.</div>
            <div class="muted">Drop files here to upload them.</div>
          </div>
        )}
        {tree?.root.children && (
          <ul role="group">
            {sortNodes(tree.root.children).map((c) => (
              <TreeNode
                key={c.path}
                node={c}
                depth={0}
                expanded={expanded}
                toggle={toggle}
                selectedFile={openPath}
                targetDir={targetDir}
                fresh={fresh}
                onOpen={onOpen}
                onPickDir={setTargetDir}
                onDropFiles={startUpload}
              />
            ))}
          </ul>
        )}
      </div>
      {dragging && (
        <div class="drop-overlay" data-testid="upload-dropzone">
          <Icon name="upload" size={28} />
          <div>Drop to upload into {targetDir ? `/${targetDir}` : "the workspace root"}</div>
          <div class="muted small">or drop onto a folder in the tree</div>
        </div>
      )}
      {conflicts && (
        <Modal
          title={
            <>
              <Icon name="alert" /> Overwrite {conflicts.length === 1 ? "a file" : `${conflicts.length} files`}?
            </>
          }
          onClose={() => {
            conflicts.forEach((c) => patch(c.id, { status: "skipped" }));
            setConflicts(null);
          }}
          testid="overwrite-dialog"
          footer={
            <>
              <button
                class="btn ghost"
                data-testid="overwrite-skip"
                onClick={() => {
                  conflicts.forEach((c) => patch(c.id, { status: "skipped" }));
                  setConflicts(null);
                }}
              >
                Keep existing
              </button>
              <button
                class="btn danger"
                data-testid="overwrite-confirm"
                onClick={() => {
                  const rows = conflicts;
                  setConflicts(null);
                  void runUploads(rows, true);
                }}
              >
                Overwrite
              </button>
            </>
          }
        >
          <p>These already exist in the workspace. Replacing them cannot be undone.</p>
          <ul class="conflict-list">
            {conflicts.map((c) => (
              <li key={c.id} class="mono">
                /{c.target ? `${c.target}/` : ""}
                {c.file.name}
              </li>
            ))}
          </ul>
        </Modal>
      )}
    </section>
  );
}

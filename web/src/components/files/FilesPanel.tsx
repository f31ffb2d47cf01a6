// Workspace files: live tree, downloads, drag-and-drop uploads with per-file progress.
// The preview of the open file is ./FilePreviewPane.tsx (the chat page places it).
import { useMemo, useRef, useState } from "preact/hooks";
import { api, saveBlob } from "../../api";
import { humanize } from "../../errors";
import { fmtBytes } from "../../format";
import type { FileTree } from "../../types";
import { Icon, Spinner } from "../Icon";
import { ErrorBanner } from "../ui";
import { OverwriteDialog } from "./OverwriteDialog";
import { folderPaths, sortNodes } from "./tree";
import { TreeNode } from "./TreeNode";
import { UploadList } from "./UploadList";
import { useFileTree } from "./useFileTree";
import { useUploads } from "./useUploads";

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
  const files = useFileTree(sid, apiKey, live, refreshSignal, onTree);
  const { tree, err, load } = files;
  const up = useUploads(sid, apiKey, () => void load());
  const [targetDir, setTargetDir] = useState("");
  const [dragging, setDragging] = useState(false);
  const [zipping, setZipping] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const dirs = useMemo(() => folderPaths(tree?.root ?? null), [tree]);

  const downloadZip = async () => {
    setZipping(true);
    try {
      saveBlob(await api.downloadZip(apiKey, sid), `${sid}-workspace.zip`);
    } catch (e) {
      files.setErr(humanize(e, "download"));
    } finally {
      setZipping(false);
    }
  };

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
        up.start(Array.from(e.dataTransfer?.files ?? []), targetDir);
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
        {(files.loading || live) && <span class={`live-dot ${live ? "on" : ""}`} title={live ? "Refreshing every 2 s while the agent works" : "Loading"} />}
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
            up.start(Array.from(el.files ?? []), targetDir);
            el.value = "";
          }}
        />
      </div>
      <ErrorBanner error={err} onDismiss={() => files.setErr(null)}>
        <button class="btn sm" onClick={() => void load()}>
          Retry
        </button>
      </ErrorBanner>
      {up.uploads.length > 0 && <UploadList uploads={up.uploads} active={up.active} onClear={up.clear} />}
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
                expanded={files.expanded}
                toggle={files.toggle}
                selectedFile={openPath}
                targetDir={targetDir}
                fresh={files.fresh}
                onOpen={onOpen}
                onPickDir={setTargetDir}
                onDropFiles={up.start}
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
      {up.conflicts && <OverwriteDialog conflicts={up.conflicts} onResolve={up.resolveConflicts} />}
    </section>
  );
}

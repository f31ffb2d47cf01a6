import { fmtBytes } from "../../format";
import { Icon } from "../Icon";
import type { UploadRow } from "./useUploads";

/** Uploads with their progress and outcome; "Clear" once none is running. */
export function UploadList({ uploads, active, onClear }: { uploads: UploadRow[]; active: boolean; onClear: () => void }) {
  return (
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
        <button class="link-btn small" onClick={onClear}>
          Clear
        </button>
      )}
    </div>
  );
}

import { Icon } from "../Icon";
import { Modal } from "../ui";
import type { UploadRow } from "./useUploads";

/** Ask before replacing files that already exist; closing keeps them. */
export function OverwriteDialog({ conflicts, onResolve }: { conflicts: UploadRow[]; onResolve: (overwrite: boolean) => void }) {
  return (
    <Modal
      title={
        <>
          <Icon name="alert" /> Overwrite {conflicts.length === 1 ? "a file" : `${conflicts.length} files`}?
        </>
      }
      onClose={() => onResolve(false)}
      testid="overwrite-dialog"
      footer={
        <>
          <button class="btn ghost" data-testid="overwrite-skip" onClick={() => onResolve(false)}>
            Keep existing
          </button>
          <button class="btn danger" data-testid="overwrite-confirm" onClick={() => onResolve(true)}>
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
  );
}

// Uploads with per-file progress, two at a time; files that already exist (409) are collected
// as conflicts for the user to overwrite or keep.
import { useState } from "preact/hooks";
import { ApiError, uploadFile } from "../../api";
import { humanize } from "../../errors";
import { toast } from "../ui";

export type UploadStatus = "queued" | "uploading" | "done" | "conflict" | "error" | "skipped";

export interface UploadRow {
  id: number;
  file: File;
  target: string;
  progress: number;
  status: UploadStatus;
  error?: string;
}

const CONCURRENCY = 2;
let uploadSeq = 0;

/** Run `work` over `items`, at most `n` at a time, in order of start. */
export async function runPool<T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async () => {
    for (let it = queue.shift(); it !== undefined; it = queue.shift()) await work(it);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export function isActive(rows: UploadRow[]): boolean {
  return rows.some((u) => u.status === "uploading" || u.status === "queued");
}

export function useUploads(sid: string, apiKey: string, onFinished: () => void) {
  const [uploads, setUploads] = useState<UploadRow[]>([]);
  const [conflicts, setConflicts] = useState<UploadRow[] | null>(null);

  const patch = (id: number, p: Partial<UploadRow>) => setUploads((rows) => rows.map((r) => (r.id === id ? { ...r, ...p } : r)));

  const run = async (rows: UploadRow[], overwrite: boolean) => {
    const conflicted: UploadRow[] = [];
    await runPool(rows, CONCURRENCY, async (row) => {
      patch(row.id, { status: "uploading", progress: 0, error: undefined });
      try {
        await uploadFile(apiKey, sid, row.file, row.target, overwrite, (p) => patch(row.id, { progress: p.total ? p.loaded / p.total : 0 })).promise;
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
    });
    onFinished();
    if (conflicted.length) setConflicts(conflicted);
    else if (rows.length) toast(`Uploaded ${rows.length} file${rows.length === 1 ? "" : "s"}`);
  };

  /** Upload files into a folder ("" is the workspace root). */
  const start = (files: File[], dir: string) => {
    if (!files.length) return;
    const rows: UploadRow[] = files.map((f) => ({ id: ++uploadSeq, file: f, target: dir, progress: 0, status: "queued" }));
    setUploads((old) => [...old.filter((r) => r.status === "uploading" || r.status === "queued"), ...rows]);
    void run(rows, false);
  };

  /** The user chose for the conflicting files: overwrite them, or keep what is there. */
  const resolveConflicts = (overwrite: boolean) => {
    const rows = conflicts ?? [];
    setConflicts(null);
    if (overwrite) void run(rows, true);
    else rows.forEach((c) => patch(c.id, { status: "skipped" }));
  };

  return { uploads, active: isActive(uploads), clear: () => setUploads([]), conflicts, start, resolveConflicts };
}

// The open file: text with highlighting, images, or a download for binaries.
import { useEffect, useState } from "preact/hooks";
import { api, saveBlob } from "../../api";
import { humanize, type HumanError } from "../../errors";
import { basename, fmtBytes } from "../../format";
import { languageForPath } from "../../lang";
import type { FilePreview } from "../../types";
import { Code } from "../Code";
import { Icon, Spinner } from "../Icon";
import { ErrorBanner } from "../ui";

const lineCount = (n: number) => `${n} line${n === 1 ? "" : "s"}`;

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

// The workspace's tree: loaded on demand, polled every 2 s while `live`, with the files that
// just changed marked "fresh" for a few seconds and their folders opened.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import { humanize, type HumanError } from "../../errors";
import type { FileNode, FileTree } from "../../types";
import { changedFiles, flatten, withParents } from "./tree";

const POLL_MS = 2000;
const FRESH_MS = 4000;

export function useFileTree(sid: string, apiKey: string, live: boolean, refreshSignal: number, onTree?: (t: FileTree) => void) {
  const [tree, setTree] = useState<FileTree | null>(null);
  const [err, setErr] = useState<HumanError | null>(null);
  const [loading, setLoading] = useState(false);
  const [expanded, setExpanded] = useState<Set<string>>(new Set([""]));
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const prevIndex = useRef<Map<string, FileNode> | null>(null);
  const inflight = useRef(false);

  const load = async () => {
    if (inflight.current) return;
    inflight.current = true;
    setLoading(true);
    try {
      const t = await api.files(apiKey, sid);
      const idx = flatten(t.root);
      if (prevIndex.current) {
        const changed = changedFiles(prevIndex.current, idx);
        if (changed.size) {
          setFresh(changed);
          setExpanded((old) => withParents(old, changed));
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
    const t = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(t);
  }, [live, sid, apiKey]);

  useEffect(() => {
    if (!fresh.size) return;
    const t = setTimeout(() => setFresh(new Set()), FRESH_MS);
    return () => clearTimeout(t);
  }, [fresh]);

  const toggle = (p: string) =>
    setExpanded((old) => {
      const n = new Set(old);
      if (n.has(p)) n.delete(p);
      else n.add(p);
      return n;
    });

  return { tree, err, setErr, loading, expanded, toggle, fresh, load };
}

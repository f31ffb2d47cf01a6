// Keeps a scroll container at the bottom while content streams in, unless the user scrolled up.
import { useLayoutEffect, useRef } from "preact/hooks";

/** Within this many pixels of the bottom counts as "at the bottom". */
const SLACK_PX = 80;

export function useStickToBottom<T extends HTMLElement>(deps: unknown[]) {
  const ref = useRef<T>(null);
  const stick = useRef(true);
  const onScroll = () => {
    const el = ref.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < SLACK_PX;
  };
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, deps);
  /** Follow the bottom again (e.g. after the user sends a message). */
  const follow = () => {
    stick.current = true;
  };
  return { ref, onScroll, follow };
}

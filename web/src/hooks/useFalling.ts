// Calls `onFall` when `value` goes from true to false (e.g. a turn stopped running).
import { useEffect, useRef } from "preact/hooks";

export function useFalling(value: boolean, onFall: () => void) {
  const was = useRef(false);
  useEffect(() => {
    if (was.current && !value) onFall();
    was.current = value;
  }, [value]);
}

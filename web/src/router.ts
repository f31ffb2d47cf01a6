// History routing: the API returns index.html for unknown non-API paths.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "launch" }
  | { page: "builder"; from: string | null }
  | { page: "chat"; sid: string }
  | { page: "sessions" }
  | { page: "notfound"; path: string };

export function parseRoute(pathname: string, search = ""): Route {
  const p = pathname.replace(/\/+$/, "") || "/";
  if (p === "/" || p === "/launch") return { page: "launch" };
  if (p === "/builder") return { page: "builder", from: new URLSearchParams(search).get("from") };
  if (p === "/sessions") return { page: "sessions" };
  const m = /^\/chat\/([^/]+)$/.exec(p);
  if (m) return { page: "chat", sid: decodeURIComponent(m[1]) };
  return { page: "notfound", path: pathname };
}

const EVT = "agc:navigate";

export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(EVT));
  window.scrollTo(0, 0);
}

export function useRoute(): Route {
  const read = () => parseRoute(location.pathname, location.search);
  const [route, setRoute] = useState<Route>(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener("popstate", on);
    window.addEventListener(EVT, on);
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener(EVT, on);
    };
  }, []);
  return route;
}

/** onClick for <a href> links: client-side navigation, new tab on modifier keys. */
export function linkClick(e: MouseEvent) {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target && a.target !== "_self") return;
  e.preventDefault();
  navigate(a.getAttribute("href") || "/");
}

import { FilesPanel } from "../../components/files/FilesPanel";
import { Icon } from "../../components/Icon";
import { TodoPanel } from "../../components/TodoPanel";
import type { Todo, FileTree } from "../../types";

/** The side panel: todos, the tools allowed for the session, and the workspace's files while
 * the session lives. */
export function ChatSide({
  sid,
  apiKey,
  todos,
  grants,
  stopped,
  running,
  filesTick,
  openPath,
  onOpen,
  onTree,
}: {
  sid: string;
  apiKey: string;
  todos: Todo[] | null;
  grants: string[];
  stopped: boolean;
  running: boolean;
  filesTick: number;
  openPath: string | null;
  onOpen: (path: string) => void;
  onTree: (t: FileTree) => void;
}) {
  return (
    <aside class="chat-side">
      <TodoPanel todos={todos} />
      {grants.length > 0 && (
        <section class="panel" data-testid="grants-panel">
          <div class="panel-head static">
            <Icon name="check" size={14} />
            <span class="panel-title">Allowed for this session</span>
          </div>
          <div class="small grants" data-testid="grants">
            {grants.join(", ")}: not asked again.
          </div>
        </section>
      )}
      {stopped && (
        <section class="panel">
          <div class="panel-head static">
            <Icon name="folder" size={14} />
            <span class="panel-title">Workspace</span>
          </div>
          <div class="empty small">The session has ended: its container and workspace were removed.</div>
        </section>
      )}
      {apiKey && !stopped && (
        <FilesPanel sid={sid} apiKey={apiKey} live={running} refreshSignal={filesTick} openPath={openPath} onOpen={onOpen} onTree={onTree} />
      )}
    </aside>
  );
}

-- AI SDK chats (`useChat`) and tool calls that wait for a person's approval (issue 14).

-- A chat id the client chose (the AI SDK's `id`), unique per workspace: the same id in
-- two workspaces names two conversations.
ALTER TABLE conversations ADD COLUMN chat_id text
    CHECK (chat_id IS NULL OR length(chat_id) BETWEEN 1 AND 200);
CREATE UNIQUE INDEX conversations_chat_id ON conversations (workspace_id, chat_id)
    WHERE chat_id IS NOT NULL;

-- A turn paused on tool calls that need approval: not running (nothing to cancel or
-- sweep), not finished either; it goes back to `running` when the approvals come.
ALTER TABLE turns DROP CONSTRAINT turns_status_check;
ALTER TABLE turns ADD CONSTRAINT turns_status_check
    CHECK (status IN ('running', 'awaiting_approval', 'completed', 'failed', 'cancelled'));

-- One tool call the model asked for that an admin marked `requires_approval`. It is
-- answered once: `approved` (the tool ran), `denied` (the model was told), or
-- `expired` (the user sent a new message instead).
CREATE TABLE tool_approvals (
    id              uuid PRIMARY KEY,
    turn_id         uuid NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    call_id         text NOT NULL,
    tool            text NOT NULL,
    input           jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    reason          text,
    -- `key:<uuid>` of whoever answered.
    decided_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz
);
CREATE INDEX tool_approvals_pending ON tool_approvals (conversation_id)
    WHERE status = 'pending';

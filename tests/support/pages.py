"""What a person does on the gateway's own pages, for the browser tests and the screenshots."""

from __future__ import annotations

import json

from tests.support.browser import Tab

#: The rows of the dashboard's device table.
DEVICE_ROWS = "document.querySelectorAll('#devices tbody tr')"
#: GraphiQL's editor that is showing in its tools pane (Variables or Headers).
_TOOL_EDITOR = (
    "document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')"
)


def open_dashboard(tab: Tab, base_url: str) -> None:
    """Opens /dashboard in a tab that has no token yet: it shows its sign-in form."""
    tab.navigate(f"{base_url}/dashboard")
    tab.wait_for("document.querySelector('#sign-in')?.hidden === false")


def sign_in(tab: Tab, token: str) -> None:
    """Pastes the token into the dashboard's form and submits it."""
    tab.evaluate("document.querySelector('#token').focus()")
    tab.send("Input.insertText", {"text": token})
    tab.evaluate("document.querySelector('#token-form').requestSubmit()")


def device_cell(owner: str, device_id: str, cell: str) -> str:
    """An expression for the text of one cell (``td.<cell>``) of a device's row, or ''."""
    row = f"#devices tr[data-owner={json.dumps(owner)}][data-device-id={json.dumps(device_id)}]"
    return f"(document.querySelector({json.dumps(f'{row} td.{cell}')}) || {{}}).textContent"


def graphiql_editor_text(tab: Tab) -> str:
    """The operation in GraphiQL's query editor."""
    text: str = tab.evaluate(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
    )
    return text


def set_graphiql_headers(tab: Tab, headers: dict[str, str]) -> None:
    """Opens GraphiQL's Headers pane and writes the headers into its editor."""
    tab.evaluate(
        "[...document.querySelectorAll('.graphiql-editor-tools button')]"
        ".find((b) => b.textContent.trim() === 'Headers').click()"
    )
    tab.wait_for(f"!!{_TOOL_EDITOR}")
    tab.evaluate(f"{_TOOL_EDITOR}.CodeMirror.setValue({json.dumps(json.dumps(headers))})")


def run_graphiql(tab: Tab, expect: str) -> str:
    """Runs the operation in GraphiQL's editor; the result's text once it contains ``expect``."""
    tab.evaluate("document.querySelector('.graphiql-execute-button').click()")
    # The whole text from CodeMirror: it draws only the lines in view.
    result = "document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue()"
    text: str = tab.wait_for(f"{result}?.includes({json.dumps(expect)}) && {result}")
    return text

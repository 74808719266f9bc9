# Sourced by test.sh: a Python virtual environment with the real clients the tests drive Factory
# with — the official MCP SDK (`mcp`) and the Prometheus client's exposition-format parser —
# pinned, from PyPI. Made once under $FACTORY_TOOLS_DIR and again only when the pins change.
# Exports FACTORY_PYTHON (that environment's python3) for the tests.

FACTORY_PYTHON_PINS="mcp==2.3.0 prometheus_client==0.26.0"

factory_python_tools() {
  local venv="$FACTORY_TOOLS_DIR/python"
  local stamp="$venv/.factory-pins"
  if [ ! -x "$venv/bin/python3" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$FACTORY_PYTHON_PINS" ]; then
    echo "python tools: installing $FACTORY_PYTHON_PINS into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $FACTORY_PYTHON_PINS
    printf '%s' "$FACTORY_PYTHON_PINS" >"$stamp"
  fi
  export FACTORY_PYTHON="$venv/bin/python3"
}

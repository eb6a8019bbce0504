#!/usr/bin/env bash
# A separate virtual environment with the official BFCL checker (bfcl-eval), for the agreement
# benchmark. bfcl-eval pins numpy 1.26 and pulls dozens of API clients; the checker and its
# prompting decoder need only these, so the rest is left out (see official_verdicts.py).
set -euo pipefail
ENV=${1:-.venv-bfcl}
python3 -m venv "$ENV"
"$ENV/bin/pip" install -q --no-deps bfcl-eval==2026.3.23
"$ENV/bin/pip" install -q tree_sitter==0.21.3 tree-sitter-java==0.21.0 tree-sitter-javascript==0.21.4 tenacity filelock python-dotenv
echo "$ENV/bin/python"

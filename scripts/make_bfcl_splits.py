"""Write `src/funreason/evaluate/bfcl_splits.json`, the committed dev/test registry of BFCL's entries,
from the installed bfcl-eval's question files by `funreason.evaluate.splits.RULE`.

Run it only to record a change of the rule or of BFCL's release, and commit the result with a
message that says why: the registry is what makes an entry test, and a test entry once studied
must move to dev, never back.
"""

import json

from funreason.evaluate.splits import REGISTRY, build_registry

if __name__ == "__main__":
    registry = build_registry()
    REGISTRY.write_text(json.dumps(registry, indent=1) + "\n", encoding="utf-8")
    for name, c in registry["categories"].items():
        print(f"{name}: {c['entries']} entries, {len(c['dev'])} dev, {c['test']} test")

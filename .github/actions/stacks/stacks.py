"""Print the repository's stacks as GitHub step outputs `matrix=` and `names=`.

A stack is a Pulumi.<stack>.yaml next to a Pulumi.yaml. Its name is the stack for the project at
the top of the repository (`dev`), else `<folder>-<stack>` (`wishlins-prod`).
"""

import json
import pathlib

rows = []
for f in sorted(pathlib.Path(".").glob("**/Pulumi.*.yaml")):
    if any(part.startswith(".") or part == "node_modules" for part in f.parts[:-1]):
        continue
    if not (f.parent / "Pulumi.yaml").is_file():
        continue
    stack = f.name[len("Pulumi."):-len(".yaml")]
    folder = f.parent.as_posix()
    rows.append({"name": stack if folder == "." else f"{f.parent.name}-{stack}", "dir": folder, "stack": stack})
names = [r["name"] for r in rows]
if len(set(names)) != len(names):
    raise SystemExit(f"two stacks have the same name: {sorted(n for n in names if names.count(n) > 1)}")
if not rows:
    raise SystemExit("no Pulumi.<stack>.yaml next to a Pulumi.yaml in this repository")
print("matrix=" + json.dumps({"include": rows}, separators=(",", ":")))
print("names=" + " ".join(names))
